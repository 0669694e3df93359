// Run Python code under the MicroPython WebAssembly port (a real MicroPython VM).
//
//   node run_mp.mjs CODE_FILE [DIR=MOUNT ...]
//
// Every DIR is copied (recursively, .py and .json files) into the VM's
// in-memory filesystem at MOUNT before CODE_FILE runs.  The VM's stdout goes
// to our stdout byte for byte; a Python exception exits with status 1.
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";
import fs from "node:fs";
import path from "node:path";

const [codeFile, ...mounts] = process.argv.slice(2);
const out = [];
const mp = await loadMicroPython({
  heapsize: 16 * 1024 * 1024,
  linebuffer: false,
  stdout: (bytes) => { for (const b of bytes) out.push(b); },
  stderr: (bytes) => process.stderr.write(Buffer.from(bytes)),
});

function mkdirs(p) {
  let cur = "";
  for (const part of p.split("/").filter(Boolean)) {
    cur += "/" + part;
    try { mp.FS.mkdir(cur); } catch (e) { /* exists */ }
  }
}

function copyTree(src, dst) {
  mkdirs(dst);
  for (const entry of fs.readdirSync(src, { withFileTypes: true })) {
    const s = path.join(src, entry.name);
    const d = dst + "/" + entry.name;
    if (entry.isDirectory()) {
      if (entry.name !== "__pycache__") copyTree(s, d);
    } else if (/\.(py|json)$/.test(entry.name)) {
      mp.FS.writeFile(d, fs.readFileSync(s));
    }
  }
}

for (const m of mounts) {
  const [src, dst] = m.split("=");
  copyTree(src, dst);
}

let status = 0;
try {
  mp.runPython(fs.readFileSync(codeFile, "utf8"));
} catch (e) {
  process.stderr.write(String(e) + "\n");
  status = 1;
}
process.stdout.write(Buffer.from(out), () => process.exit(status));
