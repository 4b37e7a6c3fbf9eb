// Runs a MicroPython script on the 32-bit WebAssembly port (npm @micropython/micropython-webassembly-pyscript),
// the nearest to a chip's word size this machine can run: `node vm32.mjs <micropython.mjs> <script> [host_dir:vm_dir ...]`.
// Each host folder is copied into the VM's in-memory filesystem at vm_dir; the script's output goes to stdout.
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const [port, script, ...mounts] = process.argv.slice(2);
const { loadMicroPython } = await import(pathToFileURL(port).href);
const mp = await loadMicroPython({ heapsize: 1024 * 1024, linebuffer: true, stdout: (l) => console.log(l), stderr: (l) => console.error(l) });

function copy(from, to) {
  mp.FS.mkdirTree(to);
  for (const name of fs.readdirSync(from)) {
    const src = path.join(from, name);
    if (fs.statSync(src).isDirectory()) copy(src, `${to}/${name}`);
    else mp.FS.writeFile(`${to}/${name}`, fs.readFileSync(src));
  }
}
for (const mount of mounts) {
  const at = mount.lastIndexOf(":");
  copy(mount.slice(0, at), mount.slice(at + 1));
}
mp.runPython(fs.readFileSync(script, "utf8"));
