/**
 * Child process for the atomicity test: announces itself, then writes a large file with
 * writeAtomic so the parent can SIGKILL it midway. Usage: atomic_writer.ts PATH MIB
 */
import { writeAtomic } from "../../cli/files.ts";

const [path, mib] = process.argv.slice(2);
const bytes = new Uint8Array(Number(mib) * 2 ** 20).fill(7);
process.stdout.write("writing\n");
await writeAtomic(path, bytes);
process.stdout.write("done\n");
