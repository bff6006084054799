"""Kafka TLS material: the service's CA and a key and certificate for every broker launch.

The CA is the one the operator gives (``kafka.tls.ca_cert_file``/``ca_key_file``) or one kmf makes
once and keeps in ZooKeeper under ``<root>/<service>/tls/`` (`load_or_create_ca`): the key znode
carries the service's ACLs, so with ZooKeeper digest credentials no one else reads it.

Certificates are issued here, in the shell, because they are cryptography with fresh randomness
and a clock: the core builds the LAUNCH as data and `TlsLaunches` adds a certificate for the
agent's address to each broker's task payload just before the ACCEPT is sent. A relaunch, in
place or on another agent, is a new launch and so gets a new certificate for its address.

During a rotation of kmf's own CA (scheduler.core.ca_rotation) a *next* CA is kept next to it
(``tls/next_ca_cert``, ``tls/next_ca_key``); `CaKeeper` holds both, and the core's
`launch_material` says which one signs a launch and which ones its truststore holds.
"""
from __future__ import annotations

import datetime
import ipaddress
import logging
from typing import Any, Callable, Mapping, Sequence

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from kazoo.exceptions import KazooException, NodeExistsError, NoNodeError

from kmfwire.errors import KmfError
from kmfwire.taskdata import TaskData, TlsMaterial

log = logging.getLogger(__name__)

CA_CERT_NODE, CA_KEY_NODE = "tls/ca_cert", "tls/ca_key"
NEXT_CERT_NODE, NEXT_KEY_NODE = "tls/next_ca_cert", "tls/next_ca_key"


class TlsError(KmfError, RuntimeError):
    """The CA cannot be read, made or used; the message says which file or znode."""


@attrs.frozen
class CertificateAuthority:
    """A CA certificate and its key, both PEM text."""

    cert_pem: str
    key_pem: str = attrs.field(repr=False)

    @property
    def not_after(self) -> float:
        """When the CA certificate expires (epoch seconds)."""
        cert = x509.load_pem_x509_certificate(self.cert_pem.encode())
        return cert.not_valid_after_utc.timestamp()

    @classmethod
    def create(cls, service: str, now: datetime.datetime, days: float = 3650) -> "CertificateAuthority":
        key = ec.generate_private_key(ec.SECP256R1())
        # a name of its own per CA (its start in it): during a rotation two CAs are trusted at once,
        # and a verifier that looks issuers up by name must not confuse them
        name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "kmf"),
                          x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")),
                          x509.NameAttribute(NameOID.COMMON_NAME, f"kmf CA of {service}")])
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=days))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                             content_commitment=False, key_encipherment=False,
                                             data_encipherment=False, key_agreement=False,
                                             encipher_only=False, decipher_only=False), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .sign(key, hashes.SHA256()))
        return cls(_pem(cert), _key_pem(key))

    @classmethod
    def from_pem(cls, cert_pem: str, key_pem: str, where: str) -> "CertificateAuthority":
        """Check that the pair is a CA certificate and its key (`where` names them in errors)."""
        try:
            cert = x509.load_pem_x509_certificate(cert_pem.encode())
            key = serialization.load_pem_private_key(key_pem.encode(), password=None)
        except (ValueError, TypeError) as exc:
            raise TlsError(f"{where}: not a PEM certificate and unencrypted PEM key ({exc})") from None
        if cert.public_key().public_numbers() != key.public_key().public_numbers():  # type: ignore[union-attr]
            raise TlsError(f"{where}: the key does not belong to the certificate")
        try:
            is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except x509.ExtensionNotFound:
            is_ca = False
        if not is_ca:
            raise TlsError(f"{where}: the certificate is not a CA (basicConstraints CA:TRUE)")
        return cls(cert_pem, key_pem)

    def issue(self, host: str, now: datetime.datetime, days: float = 365) -> tuple[str, str]:
        """A fresh key and a certificate for `host` (a DNS name or an IP address) signed by this
        CA: (certificate chain PEM — the leaf then the CA —, PKCS#8 key PEM)."""
        ca_cert = x509.load_pem_x509_certificate(self.cert_pem.encode())
        ca_key = serialization.load_pem_private_key(self.key_pem.encode(), password=None)
        key = ec.generate_private_key(ec.SECP256R1())
        try:
            san: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
        except ValueError:
            san = x509.DNSName(host)
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
                .issuer_name(ca_cert.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=days))
                .add_extension(x509.SubjectAlternativeName([san]), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                # names the CA's key too: CAs of one service (a rotation's old and new) differ by it
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()),  # type: ignore[arg-type]
                               critical=False)
                # brokers are servers to clients and clients of each other (inter-broker TLS)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                      ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
                .sign(ca_key, hashes.SHA256()))  # type: ignore[arg-type]
        return _pem(cert) + self.cert_pem, _key_pem(key)


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode("ascii")


# ------------------------------------------------------------------------------ where the CA is

def read_ca_files(cert_file: str, key_file: str) -> CertificateAuthority:
    try:
        with open(cert_file, encoding="ascii") as c, open(key_file, encoding="ascii") as k:
            cert_pem, key_pem = c.read(), k.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise TlsError(f"kafka.tls.ca_cert_file/ca_key_file: cannot read ({exc})") from None
    return CertificateAuthority.from_pem(cert_pem, key_pem, f"kafka.tls CA {cert_file}")


def load_or_create_ca(client: Any, base: str, acl: list | None, service: str,
                      now: datetime.datetime, days: float = 3650) -> CertificateAuthority:
    """The CA kept under `base` (the service's znode), made and stored first if there is none.

    Both znodes are created in one transaction with the service's ACLs; a scheduler that loses
    the race to another one reads the CA that won."""
    cert_path, key_path = f"{base}/{CA_CERT_NODE}", f"{base}/{CA_KEY_NODE}"
    try:
        return _read_ca(client, cert_path, key_path)
    except NoNodeError:
        pass
    ca = CertificateAuthority.create(service, now, days)
    client.ensure_path(f"{base}/tls", acl=acl)
    txn = client.transaction()
    txn.create(cert_path, ca.cert_pem.encode(), acl=acl)
    txn.create(key_path, ca.key_pem.encode(), acl=acl)
    results = txn.commit()
    if any(isinstance(r, NodeExistsError) for r in results):
        return _read_ca(client, cert_path, key_path)
    failed = [r for r in results if isinstance(r, Exception)]
    if failed:
        raise TlsError(f"{base}/tls: cannot store the CA: {failed[0]!r}")
    log.info("made a CA for %s's Kafka TLS, kept under %s/tls", service, base)
    return ca


def _read_ca(client: Any, cert_path: str, key_path: str) -> CertificateAuthority:
    cert, _ = client.get(cert_path)
    key, _ = client.get(key_path)
    return CertificateAuthority.from_pem(cert.decode("ascii"), key.decode("ascii"), cert_path)


# ----------------------------------------------------------------------------------- launches

def add_certificates(operations: Sequence[Mapping[str, Any]], ca: CertificateAuthority,
                     now: datetime.datetime, days: float, trust: str | None = None) -> list[dict[str, Any]]:
    """`operations` with every broker LAUNCH that has a TLS listener given a key and certificate
    for its host (the agent's address the core put in the payload), signed by `ca`; its
    truststore holds `trust` (PEM, one CA or a bundle), by default `ca` alone."""
    out: list[dict[str, Any]] = []
    for op in operations:
        if op.get("type") != "LAUNCH":
            out.append(dict(op))
            continue
        infos = []
        for info in op["launch"]["task_infos"]:
            data = TaskData.decode(info["data"])
            b = data.broker
            if b is not None and b.tls_port is not None:
                chain, key = ca.issue(b.host, now, days)
                material = TlsMaterial(ca_cert=trust or ca.cert_pem, cert_chain=chain, key=key)
                data = attrs.evolve(data, broker=attrs.evolve(b, tls=material))
                info = {**info, "data": data.encode()}
                log.info("issued a TLS certificate for %s (%s)", b.host, info.get("name"))
            infos.append(info)
        out.append({**op, "launch": {**op["launch"], "task_infos": infos}})
    return out


Material = Callable[[], tuple[str, tuple[str, ...]]]


class TlsLaunches:
    """The Mesos adapter, with certificates added to broker launches before they are accepted,
    and the CA rotation's steps (`actions.CaStep`) performed on the keeper."""

    def __init__(self, adapter: Any, ca: "CaKeeper | CertificateAuthority", days: float,
                 material: Material = lambda: ("current", ("current",))) -> None:
        self.adapter = adapter
        self.keeper = ca if isinstance(ca, CaKeeper) else CaKeeper.fixed(ca)
        self.days = days
        self.material = material  # the core's launch_material over the loop's snapshot

    def accept(self, offer_ids: Sequence[str], operations: Sequence[Mapping[str, Any]],
               refuse_seconds: float | None = None) -> bool:
        now = datetime.datetime.now(datetime.timezone.utc)
        signer, trusted = self.material()
        ca, trust = self.keeper.pick(signer, trusted)
        return self.adapter.accept(offer_ids, add_certificates(operations, ca, now, self.days, trust),
                                   refuse_seconds)

    def ca_step(self, step: str, not_after: float) -> None:
        self.keeper.step(step, not_after)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.adapter, name)


def kafka_ca(spec: Any, client: Any, base: str, acl: list | None) -> CertificateAuthority:
    """The CA of a service with ``kafka.tls`` on: the operator's files, or kmf's own in ZooKeeper
    (with a warning when the service's znodes carry no digest ACLs: anyone who reaches
    ZooKeeper could then read the CA's key)."""
    tls = spec.kafka.tls
    if tls.ca_cert_file:
        return read_ca_files(tls.ca_cert_file, tls.ca_key_file)
    if not acl:
        log.warning("kafka.tls is on without zookeeper.digest_user: the key of the CA kmf keeps "
                    "under %s/tls is readable by anyone who can reach ZooKeeper", base)
    try:
        return load_or_create_ca(client, base, acl, spec.name, datetime.datetime.now(datetime.timezone.utc),
                                 tls.ca_days)
    except KazooException as exc:
        raise TlsError(f"{base}/tls: cannot read or store the CA: {exc!r}") from None


class CaKeeper:
    """The service's CA and, during a rotation, the next one: read from ZooKeeper (or the
    operator's files, which never rotate), changed only through `step`.

    Every decision is the core's; this holds the keys and does what `actions.CaStep` says."""

    def __init__(self, client: Any, base: str, acl: list | None, service: str) -> None:
        self.client, self.base, self.acl, self.service = client, base, acl, service
        self.current: CertificateAuthority | None = None
        self.next: CertificateAuthority | None = None

    @classmethod
    def fixed(cls, ca: CertificateAuthority) -> "CaKeeper":
        """A keeper of one CA that never rotates (the operator's, or a test's)."""
        keeper = cls(None, "", None, "")
        keeper.current = ca
        return keeper

    def load(self, spec: Any) -> "CaKeeper":
        """(Re)read the CA, and the next one if a rotation is under way. Called at start and
        again once elected: a standby's copy is stale after the leader it replaces rotated."""
        self.current = kafka_ca(spec, self.client, self.base, self.acl)
        self.next = None
        if not spec.kafka.tls.ca_cert_file:
            try:
                self.next = _read_ca(self.client, f"{self.base}/{NEXT_CERT_NODE}", f"{self.base}/{NEXT_KEY_NODE}")
            except NoNodeError:
                pass
            except KazooException as exc:
                raise TlsError(f"{self.base}/tls: cannot read the next CA: {exc!r}") from None
        return self

    @property
    def not_after(self) -> float | None:
        return self.current.not_after if self.current is not None else None

    def trust_bundle(self) -> str | None:
        """What clients are given to trust: the CA, and the next one while a rotation runs."""
        if self.current is None:
            return None
        return self.current.cert_pem + (self.next.cert_pem if self.next is not None else "")

    def pick(self, signer: str, trusted: Sequence[str]) -> tuple[CertificateAuthority, str]:
        """(the CA that signs, the truststore PEM) for the core's choice. Without a next CA (a
        restart between the promotion and its Persist) the CA stands in for it: it is the next."""
        assert self.current is not None, "the CA is loaded before any launch"
        by_name = {"current": self.current, "next": self.next or self.current}
        pems = dict.fromkeys(by_name[t].cert_pem for t in trusted)  # once each, in order
        return by_name[signer], "".join(pems)

    def step(self, step: str, not_after: float) -> None:
        try:
            if step == "create":
                self._create(not_after)
            elif step == "promote":
                self._promote()
            else:
                raise TlsError(f"unknown CA step {step!r}")
        except KazooException as exc:
            raise TlsError(f"{self.base}/tls: CA {step} failed: {exc!r}") from None

    def _create(self, not_after: float) -> None:
        cert_path, key_path = f"{self.base}/{NEXT_CERT_NODE}", f"{self.base}/{NEXT_KEY_NODE}"
        try:
            self.next = _read_ca(self.client, cert_path, key_path)  # made before a restart
            return
        except NoNodeError:
            pass
        now = datetime.datetime.now(datetime.timezone.utc)
        until = datetime.datetime.fromtimestamp(not_after, datetime.timezone.utc)
        ca = CertificateAuthority.create(self.service, now, (until - now).total_seconds() / 86400)
        txn = self.client.transaction()
        txn.create(cert_path, ca.cert_pem.encode(), acl=self.acl)
        txn.create(key_path, ca.key_pem.encode(), acl=self.acl)
        failed = [r for r in txn.commit() if isinstance(r, Exception)]
        if failed:
            raise TlsError(f"{cert_path}: cannot store the next CA: {failed[0]!r}")
        self.next = ca
        log.info("made the next CA of %s (valid until %s), kept under %s/tls", self.service, until, self.base)

    def _promote(self) -> None:
        if self.next is None:
            log.info("CA promotion: no next CA (promoted before a restart)")
            return
        nxt = self.next
        txn = self.client.transaction()
        # the old key is overwritten: no certificate can be signed by the old CA any more
        txn.set_data(f"{self.base}/{CA_CERT_NODE}", nxt.cert_pem.encode())
        txn.set_data(f"{self.base}/{CA_KEY_NODE}", nxt.key_pem.encode())
        txn.delete(f"{self.base}/{NEXT_CERT_NODE}")
        txn.delete(f"{self.base}/{NEXT_KEY_NODE}")
        failed = [r for r in txn.commit() if isinstance(r, Exception)]
        if failed:
            raise TlsError(f"{self.base}/tls: cannot promote the next CA: {failed[0]!r}")
        self.current, self.next = nxt, None
        log.info("the next CA of %s is now its CA; the old one is dropped", self.service)
