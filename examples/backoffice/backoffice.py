#!/usr/bin/env python3
"""An example back office for Parley's webhook business (docs/backoffice.md), standard library only.

It answers the node's signed questions the way Parley's automatic business decides (so a node
using it talks to any other Parley node), refuses payments above a limit with the LIP-1 abort
code `payment_insufficient_funds`, and receives the node's signed events (POST /events),
printing each new one as a JSON line.

    python3 backoffice.py --secret-file secret.txt [--port 8080] [--max-amount N] [--key-id k1]

On start it prints one JSON line: {"listening": <port>}. Every later line is a JSON record of
what it answered or received.
"""
import argparse
import hashlib
import hmac
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CONTRACT = "parley.backoffice.v1"
SIGNATURE_HEADER = "parley-signature"
REPLAY_WINDOW_MS = 300_000

KYC_DATA = {"payload_type": "KYC_DATA", "payload_version": 1, "type": "individual"}
ADDITIONAL_KYC_DATA = {
    "payload_type": "KYC_DATA",
    "payload_version": 1,
    "type": "individual",
    "given_name": "John",
    "surname": "Smith",
    "dob": "1973-07-08",
}


def now_ms():
    return int(time.time() * 1000)


def sign(secret, key_id, body):
    t = now_ms()
    mac = hmac.new(secret, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},kid={key_id},v1={mac}"


def signature_problem(secret, key_id, header, body):
    if not header:
        return "no signature"
    parts = dict(p.strip().split("=", 1) for p in header.split(",") if "=" in p)
    try:
        t = int(parts.get("t", ""))
    except ValueError:
        return "no timestamp"
    if abs(now_ms() - t) > REPLAY_WINDOW_MS:
        return "timestamp outside the replay window"
    if parts.get("kid") != key_id:
        return "unknown key id"
    expected = hmac.new(secret, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, parts.get("v1", "")):
        return "bad signature"
    return None


def decide(request, max_amount):
    """The next step of my side: what I provide, what I request, ready, or abort."""
    payment = request["payment"]
    role = request["role"]
    other_role = "receiver" if role == "sender" else "sender"
    mine, theirs = payment[role], payment[other_role]
    if max_amount is not None and payment["action"]["amount"] > max_amount:
        return {"abort": {"code": "payment_insufficient_funds", "message": f"above the limit of {max_amount}"}}
    answer = {"request": "none", "ready_for_settlement": False}
    if "kyc_data" not in mine:
        answer["kyc_data"] = KYC_DATA
    if "additional_kyc_data" not in mine and theirs["status"]["status"] == "soft_match":
        answer["additional_kyc_data"] = ADDITIONAL_KYC_DATA
    if role == "receiver" and "recipient_signature" not in payment:
        # As Parley's automatic business signs (a real VASP signs a dual attestation here).
        answer["recipient_signature"] = f"{request['me']}.{payment['reference_id']}.SIGNED"
    if "kyc_data" not in theirs:
        answer["request"] = "needs_kyc_data"
    elif "additional_kyc_data" not in theirs:
        answer["request"] = "soft_match"
    elif role == "sender" and "recipient_signature" not in payment:
        answer["request"] = "needs_recipient_signature"
    else:
        answer["ready_for_settlement"] = True
    return answer


def check_recipient_signature(request):
    payment = request["payment"]
    expected = f"{request['other']}.{payment['reference_id']}.SIGNED"
    if payment.get("recipient_signature") == expected:
        return {"valid": True}
    return {"valid": False, "message": "not the receiver's signature"}


class BackOffice:
    def __init__(self, secret, key_id, max_amount):
        self.secret = secret
        self.key_id = key_id
        self.max_amount = max_amount
        self.lock = threading.Lock()
        # Idempotency: the answer given to each question id, and the event ids seen.
        self.answers = {}
        self.events_seen = set()

    def log(self, record):
        with self.lock:
            sys.stdout.write(json.dumps(record) + "\n")
            sys.stdout.flush()

    def answer(self, request):
        with self.lock:
            known = self.answers.get(request["id"])
        if known is not None:
            return known
        if request.get("contract") != CONTRACT:
            raise ValueError("unknown contract")
        if request["type"] == "decide":
            answer = decide(request, self.max_amount)
        elif request["type"] == "check_recipient_signature":
            answer = check_recipient_signature(request)
        else:
            raise ValueError("unknown request type")
        with self.lock:
            self.answers[request["id"]] = answer
        self.log({"answered": request["type"], "id": request["id"], "answer": answer})
        return answer

    def event(self, event):
        with self.lock:
            duplicate = event["id"] in self.events_seen
            self.events_seen.add(event["id"])
        if not duplicate:
            self.log({"event": event})


def handler_for(office):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def reply(self, status, payload):
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.send_header(SIGNATURE_HEADER, sign(office.secret, office.key_id, body))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            problem = signature_problem(office.secret, office.key_id, self.headers.get(SIGNATURE_HEADER), body)
            if problem:
                return self.reply(401, {"error": problem})
            try:
                payload = json.loads(body)
                if self.path.rstrip("/").endswith("/events"):
                    office.event(payload)
                    return self.reply(200, {"received": payload["id"]})
                return self.reply(200, office.answer(payload))
            except (ValueError, KeyError, TypeError) as err:
                return self.reply(400, {"error": str(err)})

    return Handler


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--secret-file", required=True)
    parser.add_argument("--key-id", default="k1")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--max-amount", type=int, default=None)
    args = parser.parse_args()
    with open(args.secret_file, encoding="utf-8") as f:
        secret = f.read().strip().encode()
    office = BackOffice(secret, args.key_id, args.max_amount)
    server = ThreadingHTTPServer((args.host, args.port), handler_for(office))
    office.log({"listening": server.server_address[1]})
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
