// Verifies a ledger entry's inclusion proof (RFC 9162 section 2.1.3.2) and the checkpoint's log signature
// (C2SP signed-note, Ed25519) with WebCrypto, reading every input from the page as it stands.
"use strict";

(function () {
  const enc = new TextEncoder();

  function hexBytes(text) {
    const clean = text.trim();
    if (!/^([0-9a-f]{2})*$/.test(clean)) throw new Error("not lower-case hex: " + clean.slice(0, 20));
    const out = new Uint8Array(clean.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.substr(i * 2, 2), 16);
    return out;
  }

  function b64Bytes(text) {
    const raw = atob(text);
    return Uint8Array.from(raw, (c) => c.charCodeAt(0));
  }

  function concat(...parts) {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) { out.set(p, at); at += p.length; }
    return out;
  }

  async function sha256(...parts) {
    return new Uint8Array(await crypto.subtle.digest("SHA-256", concat(...parts)));
  }

  function equal(a, b) {
    return a.length === b.length && a.every((v, i) => v === b[i]);
  }

  // RFC 9162 2.1.3.2: the root a leaf hash and its audit path imply.
  async function rootFromPath(index, size, leafHash, path) {
    if (index >= size) throw new Error("the leaf index is not below the tree size");
    let fn = index, sn = size - 1n, r = leafHash;
    for (const p of path) {
      if (sn === 0n) throw new Error("the audit path is longer than the tree allows");
      if ((fn & 1n) === 1n || fn === sn) {
        r = await sha256(Uint8Array.of(1), p, r);
        while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
      } else {
        r = await sha256(Uint8Array.of(1), r, p);
      }
      fn >>= 1n; sn >>= 1n;
    }
    if (sn !== 0n) throw new Error("the audit path is shorter than the tree needs");
    return r;
  }

  function parseNote(note) {
    const split = note.indexOf("\n\n");
    if (split < 0) throw new Error("the checkpoint is not a signed note");
    const text = note.slice(0, split + 1);
    const lines = text.slice(0, -1).split("\n");
    if (lines.length < 3 || !/^(0|[1-9][0-9]*)$/.test(lines[1])) throw new Error("the checkpoint text is malformed");
    const signatures = note.slice(split + 2).split("\n").filter((l) => l.length > 0).map((l) => {
      const m = /^\u2014 (\S+) (\S+)$/.exec(l);
      if (!m) throw new Error("a signature line is malformed");
      const blob = b64Bytes(m[2]);
      return { name: m[1], keyId: blob.slice(0, 4), sig: blob.slice(4) };
    });
    return { text, origin: lines[0], size: BigInt(lines[1]), root: b64Bytes(lines[2]), signatures };
  }

  async function parseVkey(vkey) {
    // name+hexid+base64: the name holds no '+', the base64 may
    const m = /^([^+\s]+)\+([0-9a-f]{8})\+(\S+)$/.exec(vkey.trim());
    if (!m) throw new Error("the key is not a vkey (name+id+key)");
    const [, name, idHex, material] = m;
    const raw = b64Bytes(material);
    if (raw[0] !== 1 || raw.length !== 33) throw new Error("the key is not an Ed25519 note key");
    const keyId = (await sha256(enc.encode(name + "\n"), raw)).slice(0, 4);
    if (!equal(keyId, hexBytes(idHex))) throw new Error("the key's ID does not match its name and key");
    return { name, keyId, publicKey: raw.slice(1) };
  }

  async function checkSignature(note, vkey) {
    const key = await parseVkey(vkey);
    if (key.name !== note.origin) throw new Error("the key is for " + key.name + ", not the log " + note.origin);
    const line = note.signatures.find((s) => s.name === key.name && equal(s.keyId, key.keyId));
    if (!line) throw new Error("the checkpoint carries no signature by this key");
    const imported = await crypto.subtle.importKey("raw", key.publicKey, { name: "Ed25519" }, false, ["verify"]);
    return crypto.subtle.verify({ name: "Ed25519" }, imported, line.sig, enc.encode(note.text));
  }

  async function verify() {
    const steps = [];
    const index = BigInt(document.getElementById("leaf-index").textContent.trim());
    const size = BigInt(document.getElementById("tree-size").textContent.trim());
    const leafData = hexBytes(document.getElementById("leaf-data").textContent);
    const path = Array.from(document.querySelectorAll("#proof code"), (c) => hexBytes(c.textContent));
    if (path.some((p) => p.length !== 32)) throw new Error("a path hash is not 32 bytes");
    const note = parseNote(document.getElementById("checkpoint-note").textContent);
    if (note.size !== size) throw new Error("the proof is for size " + size + ", the checkpoint for " + note.size);
    const root = await rootFromPath(index, size, await sha256(Uint8Array.of(0), leafData), path);
    const included = equal(root, note.root);
    steps.push([included, included ? "the path leads to the checkpoint's root" : "the path leads to another root"]);
    const signed = await checkSignature(note, document.getElementById("trusted-vkey").value);
    steps.push([signed, signed ? "the log key signed this checkpoint" : "the log signature does not verify"]);
    return steps;
  }

  function show(ok, message, steps) {
    const result = document.getElementById("verify-result");
    result.textContent = (ok ? "\u2713 " : "\u2717 ") + message;
    result.className = ok ? "good" : "bad";
    const list = document.getElementById("verify-steps");
    list.replaceChildren(...steps.map(([good, text]) => {
      const li = document.createElement("li");
      li.textContent = (good ? "\u2713 " : "\u2717 ") + text;
      return li;
    }));
  }

  document.addEventListener("DOMContentLoaded", () => {
    const button = document.getElementById("verify-button");
    if (!button) return;
    button.addEventListener("click", async () => {
      if (!window.crypto || !crypto.subtle) {
        show(false, "this page is not a secure context (use https or localhost): WebCrypto is unavailable", []);
        return;
      }
      try {
        const steps = await verify();
        const ok = steps.every(([good]) => good);
        show(ok, ok ? "verified in this browser" : "does not verify", steps);
      } catch (err) {
        show(false, "does not verify: " + err.message, []);
      }
    });
  });
})();
