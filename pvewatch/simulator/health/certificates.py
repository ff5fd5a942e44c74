"""Node certificates: `/nodes/{node}/certificates/info` (pve-manager
PVE/API2/Certificates.pm `info`, pve-common PVE/Certificate.pm `get_certificate_info`;
FACTS-health.md §5).

Each node shows the cluster CA (`pve-root-ca.pem`, one for the whole cluster, 10 years),
its own `pve-ssl.pem` (issued by that CA for 2 years) and, once set, a custom or ACME
`pveproxy-ssl.pem`; in that order. `PUT /_sim/certificates/{node}/{file}` sets one
(`notafter`, `notbefore`, `subject`, `issuer`, `san`); the CA applies to every node.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field, replace
from typing import Any

from pvewatch.simulator.edits import ControlError
from pvewatch.simulator.health import fields
from pvewatch.simulator.health.notices import fqdn

FILES = ("pve-root-ca.pem", "pve-ssl.pem", "pveproxy-ssl.pem")
CA_SUBJECT = (
    "/CN=Proxmox Virtual Environment"
    "/OU=c502108f-f0b7-4217-bb9f-4b8e3931be3c/O=PVE Cluster Manager CA"
)
_DAY = 86_400


@dataclass(slots=True)
class Certificate:
    subject: str
    issuer: str
    notbefore: int
    notafter: int
    san: list[str] = field(default_factory=list)
    key_type: str = "rsaEncryption"
    key_bits: int = 2048

    def info(self, filename: str, owner: str) -> dict[str, Any]:
        seed = f"{owner}/{filename}/{self.subject}/{self.notbefore}/{self.notafter}".encode()
        digest = hashlib.sha256(seed).digest()
        body = base64.b64encode(digest * 3).decode()
        return {
            "filename": filename,
            "fingerprint": ":".join(f"{b:02X}" for b in digest),
            "subject": self.subject,
            "issuer": self.issuer,
            "notbefore": self.notbefore,
            "notafter": self.notafter,
            "san": list(self.san),
            "pem": f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n",
            "public-key-type": self.key_type,
            "public-key-bits": self.key_bits,
        }


class CertificateStore:
    def __init__(self, installed: float) -> None:
        day = int(installed) // _DAY * _DAY
        self._installed = day
        self.ca = Certificate(CA_SUBJECT, CA_SUBJECT, day, day + 3650 * _DAY, key_bits=4096)
        self.by_node: dict[str, dict[str, Certificate]] = {}

    def node_files(self, node: str, ip: str) -> dict[str, Certificate]:
        """A node's own certificates (created on first use, so any node name has them)."""
        if node not in self.by_node:
            subject = f"/OU=PVE Cluster Node/O=Proxmox Virtual Environment/CN={fqdn(node)}"
            san = ["127.0.0.1", "0000:0000:0000:0000:0000:0000:0000:0001", "localhost"]
            own = Certificate(subject, CA_SUBJECT, self._installed, self._installed + 730 * _DAY)
            own.san = [*san, ip, node, fqdn(node)]
            self.by_node[node] = {"pve-ssl.pem": own}
        return self.by_node[node]

    def info(self, node: str, ip: str) -> list[dict[str, Any]]:
        files = {"pve-root-ca.pem": self.ca, **self.node_files(node, ip)}
        return [files[name].info(name, node) for name in FILES if name in files]

    def put(self, node: str, ip: str, filename: str, body: Any) -> None:
        where = f"/_sim/certificates/{node}/{filename}"
        if filename not in FILES:
            raise ControlError(f"{where}: the file is one of {', '.join(FILES)}")
        spec = fields.body_object(
            body, where, ("notafter", "notbefore", "subject", "issuer", "san")
        )
        files = self.node_files(node, ip)
        current = self.ca if filename == "pve-root-ca.pem" else files.get(filename)
        if current is None:  # a custom certificate, as an ACME one looks
            current = Certificate(
                f"/CN={fqdn(node)}",
                "/C=US/O=Let's Encrypt/CN=R11",
                self._installed,
                self._installed + 90 * _DAY,
                [fqdn(node)],
                "id-ecPublicKey",
                256,
            )
        new = replace(current)
        for key in ("notafter", "notbefore"):
            if key in spec:
                setattr(new, key, fields.epoch(spec[key], where, key))
        for key in ("subject", "issuer"):
            if key in spec:
                setattr(new, key, fields.text(spec[key], where, key))
        if "san" in spec:
            new.san = fields.strings(spec["san"], where, "san")
        if new.notbefore > new.notafter:
            raise ControlError(f"{where}: 'notbefore' is after 'notafter'")
        if filename == "pve-root-ca.pem":
            self.ca = new
        else:
            files[filename] = new

    def delete(self, node: str, ip: str, filename: str) -> None:
        where = f"/_sim/certificates/{node}/{filename}"
        if filename != "pveproxy-ssl.pem":
            raise ControlError(f"{where}: only pveproxy-ssl.pem can be removed")
        if self.node_files(node, ip).pop(filename, None) is None:
            raise ControlError(f"{where}: not set")
