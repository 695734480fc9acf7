"""The program's document in plain words, in the page's language: every rule's conditions
and effects, limits, terms and the tier ladder — for the console (the program's pages) and
for members (the app's page of the program's rules)."""
