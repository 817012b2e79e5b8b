// MLS (RFC 9420) interop peer backed by ts-mls 1.6.4, an implementation independent of
// the Go one under test. One process = one client identity in at most one group.
// Protocol: newline-delimited JSON on stdin/stdout, one response per request, in order;
// byte strings are standard base64. See README.md.
import { createInterface } from "node:readline";
import {
  ciphersuites,
  createApplicationMessage,
  createCommit,
  createGroup,
  decodeMlsMessage,
  defaultCapabilities,
  defaultLifetime,
  emptyPskIndex,
  encodeMlsMessage,
  generateKeyPackageWithKey,
  getCiphersuiteFromName,
  getCiphersuiteImpl,
  joinGroup,
  mlsExporter,
  processMessage,
  acceptAll,
} from "ts-mls";
// Not re-exported from the package root, but reachable through its "./*.js" export map.
import { makeKeyPackageRef } from "ts-mls/keyPackage.js";

const b64 = (u8) => Buffer.from(u8).toString("base64");
const unb64 = (s, field) => {
  if (typeof s !== "string") throw new Error(`${field}: expected a base64 string`);
  return new Uint8Array(Buffer.from(s, "base64"));
};
const eq = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

function decodeMessage(s, field, wireformat) {
  const bytes = unb64(s, field);
  const res = decodeMlsMessage(bytes, 0);
  if (res === undefined) throw new Error(`${field}: not a valid MLSMessage`);
  const [msg, used] = res;
  // Trailing bytes would hide a framing disagreement between the implementations.
  if (used !== bytes.length) throw new Error(`${field}: ${bytes.length - used} trailing bytes after MLSMessage`);
  if (wireformat && !wireformat.includes(msg.wireformat))
    throw new Error(`${field}: wire format ${msg.wireformat}, want ${wireformat.join(" or ")}`);
  return msg;
}

// ts-mls's default capabilities add random GREASE values (RFC 9420 §13.5); that makes
// a failing interop run unreproducible, so GREASE is opt-in via init {grease:true}.
function capabilities(grease) {
  if (grease) return defaultCapabilities();
  return {
    versions: ["mls10"],
    // Only the IANA-registered suites; ts-mls also lists its private post-quantum code points.
    ciphersuites: Object.keys(ciphersuites).filter((n) => ciphersuites[n] <= 7),
    extensions: [],
    proposals: [],
    credentials: ["basic", "x509"],
  };
}

// ts-mls's defaultLifetime is 0..2^63-1, valid for ever; an authentication service that bounds a
// KeyPackage's lifetime (ours does: mls.MaxKeyPackageLifetime) rejects it, so key_package can ask
// for a bounded one. Like the Go side, not_before is an hour back to absorb clock skew.
function lifetime(seconds) {
  if (seconds === undefined) return defaultLifetime;
  if (!Number.isInteger(seconds) || seconds <= 0) throw new Error("lifetime_seconds: expected a positive integer");
  const now = BigInt(Math.floor(Date.now() / 1000));
  return { notBefore: now - 3600n, notAfter: now + BigInt(seconds) };
}

let me = null; // {cs, credential, sigKeys, caps}
let keyPackages = []; // [{publicPackage, privatePackage, ref}]
let state = null; // ts-mls ClientState

const needInit = () => {
  if (!me) throw new Error("init first");
};
const needGroup = () => {
  needInit();
  if (!state) throw new Error("not in a group");
};

async function commit(options, priv) {
  const res = await createCommit(
    { state, cipherSuite: me.cs, pskIndex: emptyPskIndex },
    { wireAsPublicMessage: !priv, ratchetTreeExtension: true, ...options },
  );
  state = res.newState; // the committer merges its own commit at once
  return res;
}

const ops = {
  async init({ suite, identity, grease }) {
    const name = Object.keys(ciphersuites).find((n) => ciphersuites[n] === suite);
    if (!name) throw new Error(`unknown suite ${suite}`);
    if (typeof identity !== "string") throw new Error("identity: expected a string");
    const cs = await getCiphersuiteImpl(getCiphersuiteFromName(name));
    // One signature key for the whole client, so every key package and leaf is the same identity.
    const sigKeys = await cs.signature.keygen();
    me = {
      cs,
      credential: { credentialType: "basic", identity: new TextEncoder().encode(identity) },
      sigKeys,
      caps: capabilities(grease === true),
    };
    keyPackages = [];
    state = null;
    return { suite_name: name, signature_key: b64(sigKeys.publicKey) };
  },

  async key_package({ lifetime_seconds }) {
    needInit();
    const kp = await generateKeyPackageWithKey(me.credential, me.caps, lifetime(lifetime_seconds), [], me.sigKeys, me.cs);
    const ref = await makeKeyPackageRef(kp.publicPackage, me.cs.hash);
    keyPackages.push({ ...kp, ref });
    const msg = encodeMlsMessage({ version: "mls10", wireformat: "mls_key_package", keyPackage: kp.publicPackage });
    return { key_package: b64(msg), ref: b64(ref) };
  },

  async create_group({ group_id }) {
    needInit();
    const kp = await generateKeyPackageWithKey(me.credential, me.caps, defaultLifetime, [], me.sigKeys, me.cs);
    state = await createGroup(unb64(group_id, "group_id"), kp.publicPackage, kp.privatePackage, [], me.cs);
    return {};
  },

  async add({ key_packages, private: priv }) {
    needGroup();
    if (!Array.isArray(key_packages) || key_packages.length === 0) throw new Error("key_packages: expected a non-empty array");
    const extraProposals = key_packages.map((s, i) => ({
      proposalType: "add",
      add: { keyPackage: decodeMessage(s, `key_packages[${i}]`, ["mls_key_package"]).keyPackage },
    }));
    const res = await commit({ extraProposals }, priv);
    const welcome = encodeMlsMessage({ version: "mls10", wireformat: "mls_welcome", welcome: res.welcome });
    return { commit: b64(encodeMlsMessage(res.commit)), welcome: b64(welcome) };
  },

  async remove({ leaf, private: priv }) {
    needGroup();
    if (!Number.isInteger(leaf) || leaf < 0) throw new Error("leaf: expected a leaf index");
    const res = await commit({ extraProposals: [{ proposalType: "remove", remove: { removed: leaf } }] }, priv);
    return { commit: b64(encodeMlsMessage(res.commit)) };
  },

  async update({ private: priv }) {
    needGroup();
    // A commit with no proposals still carries an UpdatePath (RFC 9420 §12.4), i.e. a fresh leaf.
    const res = await commit({}, priv);
    return { commit: b64(encodeMlsMessage(res.commit)) };
  },

  async join({ welcome }) {
    needInit();
    const w = decodeMessage(welcome, "welcome", ["mls_welcome"]).welcome;
    const kp = keyPackages.find((k) => w.secrets.some((s) => eq(s.newMember, k.ref)));
    if (!kp) throw new Error("welcome is for none of this peer's key packages");
    // No out-of-band tree: the Welcome's GroupInfo must carry the ratchet_tree extension.
    state = await joinGroup(w, kp.publicPackage, kp.privatePackage, emptyPskIndex, me.cs);
    return {};
  },

  async process({ message }) {
    needGroup();
    const msg = decodeMessage(message, "message", ["mls_public_message", "mls_private_message"]);
    const contentType =
      msg.wireformat === "mls_public_message" ? msg.publicMessage.content.contentType : msg.privateMessage.contentType;
    const res = await processMessage(msg, state, emptyPskIndex, acceptAll, me.cs);
    state = res.newState;
    if (res.kind === "applicationMessage") return { kind: "application", plaintext: b64(res.message) };
    const out = { kind: contentType };
    if (state.groupActiveState.kind === "removedFromGroup") out.removed = true;
    return out;
  },

  async encrypt({ plaintext }) {
    needGroup();
    const res = await createApplicationMessage(state, unb64(plaintext, "plaintext"), me.cs);
    state = res.newState;
    const msg = encodeMlsMessage({ version: "mls10", wireformat: "mls_private_message", privateMessage: res.privateMessage });
    return { message: b64(msg) };
  },

  async state() {
    needGroup();
    const members = [];
    state.ratchetTree.forEach((node, i) => {
      // Leaves sit at even node indices (RFC 9420 appendix C).
      if (i % 2 === 0 && node?.nodeType === "leaf") {
        const cred = node.leaf.credential;
        members.push({ leaf: i / 2, identity: b64(cred.credentialType === "basic" ? cred.identity : new Uint8Array()) });
      }
    });
    return {
      epoch: Number(state.groupContext.epoch),
      leaf: state.privatePath.leafIndex,
      members,
      epoch_authenticator: b64(state.keySchedule.epochAuthenticator),
      group_id: b64(state.groupContext.groupId),
      removed: state.groupActiveState.kind === "removedFromGroup",
    };
  },

  async export({ label, context, length }) {
    needGroup();
    if (typeof label !== "string") throw new Error("label: expected a string");
    if (!Number.isInteger(length) || length < 0) throw new Error("length: expected a non-negative integer");
    const secret = await mlsExporter(state.keySchedule.exporterSecret, label, unb64(context ?? "", "context"), length, me.cs);
    return { secret: b64(secret) };
  },
};

async function handle(line) {
  let req;
  try {
    req = JSON.parse(line);
  } catch (e) {
    return { ok: false, error: `bad JSON: ${e.message}` };
  }
  if (req === null || typeof req !== "object" || Array.isArray(req)) return { ok: false, error: "request must be an object" };
  const op = Object.hasOwn(ops, req.op) ? ops[req.op] : undefined;
  if (!op) return { ok: false, error: `unknown op ${JSON.stringify(req.op)}` };
  try {
    return { ok: true, ...(await op(req)) };
  } catch (e) {
    return { ok: false, error: `${req.op}: ${e?.name ?? "Error"}: ${e?.message ?? String(e)}` };
  }
}

// Anything that escapes a handler must not kill the peer mid-test; log it for the Go side's stderr capture.
process.on("uncaughtException", (e) => console.error("peer: uncaught", e));
process.on("unhandledRejection", (e) => console.error("peer: unhandled rejection", e));

// Lines are handled strictly one at a time so responses stay in request order.
for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
  if (line.trim() === "") continue;
  process.stdout.write(JSON.stringify(await handle(line)) + "\n");
}
