#!/usr/bin/env python3
"""Mints a demo token for this example (HS256, Python standard library only).

  python3 examples/jwt-claims-routing/mint.py --tenant acme --tier enterprise
  python3 examples/jwt-claims-routing/mint.py --tenant initech --tier pro --ttl 600

The secret is JWT_SECRET from the environment, else from config/.env beside this script.
"""
import argparse, base64, hashlib, hmac, json, os, time

def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

def secret() -> str:
    if os.environ.get("JWT_SECRET"):
        return os.environ["JWT_SECRET"]
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "config", ".env")) as f:
        for line in f:
            if line.startswith("JWT_SECRET="):
                return line.split("=", 1)[1].strip()
    raise SystemExit("JWT_SECRET not found")

parser = argparse.ArgumentParser()
parser.add_argument("--tenant", required=True)
parser.add_argument("--tier", default="pro")
parser.add_argument("--sub", default="user-1")
parser.add_argument("--ttl", type=int, default=3600, help="seconds until the token expires")
args = parser.parse_args()
now = int(time.time())
claims = {"sub": args.sub, "iss": "https://auth.gatehouse.test", "aud": "gatehouse-api", "iat": now,
          "exp": now + args.ttl, "tenant_id": args.tenant, "subscription_tier": args.tier}
signing_input = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + b64(json.dumps(claims).encode())
signature = hmac.new(secret().encode(), signing_input.encode(), hashlib.sha256).digest()
print(signing_input + "." + b64(signature))
