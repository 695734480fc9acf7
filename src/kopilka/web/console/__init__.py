"""The staff console (``/console``): pages per part of the program, over the same services
as the API, admitted by the same permissions as the API's routes."""
