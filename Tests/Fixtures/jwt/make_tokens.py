#!/usr/bin/env python3
"""Mints the JWT fixtures of Tests/GatehouseTests/JWTTests.swift with an implementation
independent of jwt-kit (joserfc + cryptography), so the tests do not only check jwt-kit
against itself. Run once; the outputs are committed:

  keys/*.pem         public keys (the private halves are not kept)
  jwks.json          a JWKS with the RSA and EC keys (kids "rsa-1", "ec-1")
  tokens.json        name -> token, plus the HMAC secret

`--add-tiers` adds one HS256 token per rate-limit tier ("tier_free" … "tier_enterprise").
Valid tokens expire in 2100; "expired" expired in 2001; "not_yet_valid" starts in 2099.
"crit_*" tokens carry a `crit` header naming an extension (RFC 7515 §4.1.11); `--add-crit`
adds just those to an existing tokens.json (HS256, the committed secret), keeping the keys.
"""
import base64, hashlib, hmac, json, os, sys
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa, ec, ed25519
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey, ECKey, OKPKey

here = os.path.dirname(os.path.abspath(__file__))

def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

def crit_tokens(secret, claims):
    """Validly signed HS256 tokens whose `crit` names an extension a verifier must understand."""
    from joserfc import jws
    from joserfc.jws import JWSRegistry
    from joserfc.jwk import OctKey
    from joserfc.registry import HeaderParameter
    registry = JWSRegistry(header_registry={"x-gatehouse-ext": HeaderParameter("test extension", "bool"),
                                            "b64": HeaderParameter("RFC 7797", "bool")})
    payload = json.dumps(claims).encode()
    key = OctKey.import_key(secret)
    def by_hand(header):
        # joserfc refuses to mint these (an empty crit; a crit naming an absent parameter).
        signing_input = b64(json.dumps(header).encode()) + "." + b64(payload)
        return signing_input + "." + b64(hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest())
    return {
        "crit_empty": by_hand({"alg": "HS256", "crit": []}),
        "crit_absent_parameter": by_hand({"alg": "HS256", "crit": ["x-not-there"]}),
        "crit_extension": jws.serialize_compact({"alg": "HS256", "crit": ["x-gatehouse-ext"], "x-gatehouse-ext": True}, payload, key, registry=registry),
        "crit_b64": jws.serialize_compact({"alg": "HS256", "crit": ["b64"], "b64": True}, payload, key, registry=registry),
    }

def tier_tokens(secret):
    """HS256 tokens of one tenant per seed-003 tier (`subscription_tier` claim), for the
    rate-limit tests."""
    key = OctKey.import_key(secret)
    out = {}
    for tier in ["free", "starter", "pro", "enterprise"]:
        claims = {"sub": "tier-" + tier, "iss": "https://issuer.test", "aud": "gatehouse-tests", "exp": 4102444800,
                  "tenant_id": tier + "-co", "subscription_tier": tier}
        out["tier_" + tier] = jwt.encode({"alg": "HS256"}, claims, key)
    return out

if "--add-tiers" in sys.argv:
    path = os.path.join(here, "tokens.json")
    with open(path) as f:
        fixture = json.load(f)
    fixture["tokens"].update(tier_tokens(fixture["secret"]))
    with open(path, "w") as f:
        json.dump(fixture, f, indent=2)
    print("added tier tokens")
    sys.exit(0)

if "--add-crit" in sys.argv:
    path = os.path.join(here, "tokens.json")
    with open(path) as f:
        fixture = json.load(f)
    fixture["tokens"].update(crit_tokens(fixture["secret"], {"sub": "user-42", "iss": "https://issuer.test", "aud": "gatehouse-tests", "exp": 4102444800, "tenant_id": "acme", "subscription_tier": "enterprise"}))
    with open(path, "w") as f:
        json.dump(fixture, f, indent=2)
    print("added crit tokens")
    sys.exit(0)

os.makedirs(os.path.join(here, "keys"), exist_ok=True)
SECRET = "gatehouse-test-hmac-secret-0123456789abcdef-0123456789abcdef-64bytes"
CLAIMS = {"sub": "user-42", "iss": "https://issuer.test", "aud": "gatehouse-tests", "exp": 4102444800,
          "tenant_id": "acme", "subscription_tier": "enterprise"}

def pem(public_key):
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()

rsa_private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ec256 = ec.generate_private_key(ec.SECP256R1())
ec384 = ec.generate_private_key(ec.SECP384R1())
ed = ed25519.Ed25519PrivateKey.generate()
other_rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)

def priv_pem(k):
    return k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())

rsa_key = RSAKey.import_key(priv_pem(rsa_private))
other_rsa_key = RSAKey.import_key(priv_pem(other_rsa))
ec256_key = ECKey.import_key(priv_pem(ec256))
ec384_key = ECKey.import_key(priv_pem(ec384))
ed_key = OKPKey.import_key(priv_pem(ed))
oct_key = OctKey.import_key(SECRET)

for name, key in [("rsa", rsa_private), ("ec256", ec256), ("ec384", ec384), ("ed25519", ed)]:
    with open(os.path.join(here, "keys", name + ".pem"), "w") as f:
        f.write(pem(key.public_key()))

def token(alg, key, claims=CLAIMS, kid=None):
    header = {"alg": alg}
    if kid: header["kid"] = kid
    return jwt.encode(header, claims, key, algorithms=[alg])

def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

tokens = {
    "HS256": token("HS256", oct_key), "HS384": token("HS384", oct_key), "HS512": token("HS512", oct_key),
    "RS256": token("RS256", rsa_key), "RS384": token("RS384", rsa_key), "RS512": token("RS512", rsa_key),
    "PS256": token("PS256", rsa_key),
    "ES256": token("ES256", ec256_key), "ES384": token("ES384", ec384_key),
    "EdDSA": token("EdDSA", ed_key),
    "wrong_signature": token("RS256", other_rsa_key),
    "expired": token("RS256", rsa_key, dict(CLAIMS, exp=978307200)),
    "not_yet_valid": token("RS256", rsa_key, dict(CLAIMS, nbf=4070908800)),
    "wrong_issuer": token("RS256", rsa_key, dict(CLAIMS, iss="https://evil.test")),
    "wrong_audience": token("RS256", rsa_key, dict(CLAIMS, aud="someone-else")),
    "jwks_rsa": token("RS256", rsa_key, kid="rsa-1"),
    "jwks_ec": token("ES256", ec256_key, kid="ec-1"),
    "jwks_unknown_kid": token("RS256", rsa_key, kid="rotated-away"),
}
tokens.update(crit_tokens(SECRET, CLAIMS))
# alg "none": no signature at all.
header = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
body = b64(json.dumps(CLAIMS).encode())
tokens["alg_none"] = header + "." + body + "."
# Algorithm confusion: HS256 "signed" with the RSA public key's PEM as the HMAC secret.
header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
signing_input = (header + "." + body).encode()
public_pem = pem(rsa_private.public_key()).encode()
tokens["hs_rs_confusion"] = header + "." + body + "." + b64(hmac.new(public_pem, signing_input, hashlib.sha256).digest())

jwks = {"keys": [
    dict(rsa_key.as_dict(private=False), kid="rsa-1", alg="RS256", use="sig"),
    dict(ec256_key.as_dict(private=False), kid="ec-1", alg="ES256", use="sig"),
]}
with open(os.path.join(here, "jwks.json"), "w") as f:
    json.dump({"set": jwks}, f, indent=2)
with open(os.path.join(here, "tokens.json"), "w") as f:
    json.dump({"secret": SECRET, "tokens": tokens}, f, indent=2)
print("wrote", len(tokens), "tokens")
