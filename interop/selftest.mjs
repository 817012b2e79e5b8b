// Drives three peer.mjs processes through the scenario the Go interop test uses, so a
// broken peer is caught here rather than mistaken for a Go bug. Usage: node selftest.mjs [suite...]
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const peerPath = fileURLToPath(new URL("./peer.mjs", import.meta.url));
const b64 = (s) => Buffer.from(s).toString("base64");
const text = (s) => Buffer.from(s, "base64").toString();

let passed = 0;
let failed = 0;
function check(cond, what) {
  if (cond) passed++;
  else {
    failed++;
    console.error(`FAIL: ${what}`);
  }
}

class Peer {
  constructor(name) {
    this.name = name;
    this.proc = spawn(process.execPath, [peerPath], { stdio: ["pipe", "pipe", "inherit"] });
    this.waiting = [];
    createInterface({ input: this.proc.stdout }).on("line", (l) => this.waiting.shift()?.(JSON.parse(l)));
  }
  // Raw request: resolves with the response object whatever its ok.
  raw(req) {
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      this.proc.stdin.write((typeof req === "string" ? req : JSON.stringify(req)) + "\n");
    });
  }
  async call(op, args = {}) {
    const res = await this.raw({ op, ...args });
    if (!res.ok) throw new Error(`${this.name} ${op}: ${res.error}`);
    return res;
  }
  close() {
    this.proc.stdin.end();
  }
}

// Every current member must agree on epoch, authenticator, exporter output and roster.
async function sameEpoch(step, peers) {
  const states = await Promise.all(peers.map((p) => p.call("state")));
  const exports = await Promise.all(peers.map((p) => p.call("export", { label: "selftest", context: b64("ctx"), length: 32 })));
  const roster = (s) => JSON.stringify(s.members);
  for (let i = 1; i < peers.length; i++) {
    const who = `${step}: ${peers[0].name} vs ${peers[i].name}`;
    check(states[i].epoch === states[0].epoch, `${who} epoch ${states[0].epoch} != ${states[i].epoch}`);
    check(states[i].epoch_authenticator === states[0].epoch_authenticator, `${who} epoch_authenticator differs`);
    check(exports[i].secret === exports[0].secret, `${who} exporter secret differs`);
    check(roster(states[i]) === roster(states[0]), `${who} roster ${roster(states[0])} != ${roster(states[i])}`);
  }
  return states;
}

async function send(from, to, msg) {
  const { message } = await from.call("encrypt", { plaintext: b64(msg) });
  for (const p of to) {
    const res = await p.call("process", { message });
    check(res.kind === "application" && text(res.plaintext) === msg, `${from.name} -> ${p.name}: got ${JSON.stringify(res)}`);
  }
}

// MLSMessage = version(uint16) || wire_format(uint16) || ...; 1 = public, 2 = private (RFC 9420 §6).
const wireFormat = (m) => Buffer.from(m, "base64").readUInt16BE(2);

async function scenario(suite) {
  const A = new Peer("A");
  const B = new Peer("B");
  const C = new Peer("C");
  try {
    await A.call("init", { suite, identity: "alice" });
    await B.call("init", { suite, identity: "bob" });
    await C.call("init", { suite, identity: "carol" });

    const bad = await A.raw("{not json");
    check(bad.ok === false && typeof bad.error === "string", "bad request gives ok:false");

    const kpB = await B.call("key_package");
    check(wireFormat(kpB.key_package) === 5, "key package is an MLSMessage(mls_key_package)");
    await A.call("create_group", { group_id: b64("selftest-group") });
    const addB = await A.call("add", { key_packages: [kpB.key_package] });
    check(wireFormat(addB.commit) === 1 && wireFormat(addB.welcome) === 3, "add: public commit + welcome");
    await B.call("join", { welcome: addB.welcome });
    let st = await sameEpoch("A adds B", [A, B]);
    check(st[0].epoch === 1 && st[1].leaf === 1, `B at leaf 1 in epoch 1: ${JSON.stringify(st[1])}`);

    await send(A, [B], "hello bob");
    await send(B, [A], "hello alice");

    const upd = await B.call("update");
    check((await A.call("process", { message: upd.commit })).kind === "commit", "A processes B's update");
    await sameEpoch("B updates", [A, B]);

    const updPriv = await B.call("update", { private: true });
    check(wireFormat(updPriv.commit) === 2, "private commit is a PrivateMessage");
    check((await A.call("process", { message: updPriv.commit })).kind === "commit", "A processes B's private update");
    await sameEpoch("B updates (private)", [A, B]);

    const badLifetime = await C.raw({ op: "key_package", lifetime_seconds: -1 });
    check(badLifetime.ok === false, "key_package refuses a negative lifetime_seconds");
    // A bounded lifetime, as the Go tests ask for: the rest of the scenario must work with it too.
    const kpC = await C.call("key_package", { lifetime_seconds: 30 * 24 * 3600 });
    const addC = await B.call("add", { key_packages: [kpC.key_package] });
    check((await A.call("process", { message: addC.commit })).kind === "commit", "A processes B's add of C");
    await C.call("join", { welcome: addC.welcome });
    st = await sameEpoch("B adds C", [A, B, C]);
    check(st[2].leaf === 2 && st[0].members.length === 3, `C at leaf 2 of 3: ${JSON.stringify(st[2])}`);
    await send(C, [A, B], "hi from carol");

    const rm = await A.call("remove", { leaf: 2 });
    const atB = await B.call("process", { message: rm.commit });
    check(atB.kind === "commit" && !atB.removed, `B processes the remove: ${JSON.stringify(atB)}`);
    const atC = await C.call("process", { message: rm.commit });
    check(atC.kind === "commit" && atC.removed === true, `C learns it was removed: ${JSON.stringify(atC)}`);
    st = await sameEpoch("A removes C", [A, B]);
    check(st[0].members.length === 2, "two members left");

    await send(A, [B], "after remove, to bob");
    await send(B, [A], "after remove, to alice");
    await sameEpoch("end", [A, B]);
  } catch (e) {
    check(false, `suite ${suite}: ${e.message}`);
  } finally {
    for (const p of [A, B, C]) p.close();
  }
}

const suites = process.argv.length > 2 ? process.argv.slice(2).map(Number) : [1, 3];
for (const suite of suites) {
  const before = failed;
  await scenario(suite);
  console.log(`suite ${suite}: ${failed === before ? "ok" : "FAILED"}`);
}
console.log(`${passed} passed, ${failed} failed`);
process.exitCode = failed === 0 ? 0 : 1;
