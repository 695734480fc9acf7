"""Google Wallet's "save" link: ``https://pay.google.com/gp/v/save/<jwt>``, the JWT signed
(RS256) with the program's service account key and carrying the member's loyalty object.
Nothing is sent to Google from here: the member's phone follows the link, and Google makes
the object (of the class the program created in Google's console) when the member saves it.
"""

from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

SAVE_URL = "https://pay.google.com/gp/v/save/"


def save_url(claims: dict[str, Any], key: rsa.RSAPrivateKey) -> str:
    return SAVE_URL + jwt.encode(claims, key, algorithm="RS256")
