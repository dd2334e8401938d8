// Sends raw Ethernet frames out of an interface with an AF_PACKET socket
// (run inside a test namespace with `ip netns exec`). Bounded by COUNT.
//   rawsend IFNAME COUNT HEXFRAME [HEXFRAME ...]   sends each frame COUNT times
//   rawsend --each COUNT IFNAME HEXFRAME [IFNAME HEXFRAME ...]   each frame COUNT times out of its own interface
import koffi from 'koffi';

const argv = process.argv.slice(2);
const each = argv[0] === '--each';
const [ifname, count, ...hex] = each ? ['', argv[1], ...argv.slice(2)] : argv;
/** [interface, frame] pairs. */
const jobs = [];
if (each) for (let i = 0; i < hex.length; i += 2) jobs.push([hex[i], hex[i + 1]]);
else for (const h of hex) jobs.push([ifname, h]);
const libc = koffi.load('libc.so.6');
const socket = libc.func('int socket(int domain, int type, int protocol)');
const sendto = libc.func('long sendto(int fd, void *buf, size_t len, int flags, void *addr, uint32_t alen)');
const close = libc.func('int close(int fd)');
const ifNameToIndex = libc.func('uint32_t if_nametoindex(const char *name)');

const AF_PACKET = 17;
const SOCK_RAW = 3;
const fd = socket(AF_PACKET, SOCK_RAW, 0);
if (fd < 0) {
  console.error(`socket: errno ${koffi.errno()}`);
  process.exit(1);
}
// struct sockaddr_ll: family@0, protocol@2 (be), ifindex@4, hatype@8, pkttype@10, halen@11, addr@12; 20 bytes
const sll = Buffer.alloc(20);
sll.writeUInt16LE(AF_PACKET, 0);
sll[11] = 6;
let sent = 0;
for (const [name, h] of jobs) {
  const ifindex = ifNameToIndex(name);
  if (!ifindex) {
    console.error(`no interface ${name}`);
    process.exit(2);
  }
  sll.writeInt32LE(ifindex, 4);
  const frame = Buffer.from(h, 'hex');
  frame.copy(sll, 12, 0, 6);
  for (let i = 0; i < Number(count); i++) {
    const n = sendto(fd, frame, frame.length, 0, sll, sll.length);
    if (n !== frame.length) {
      console.error(`sendto: ${n}, errno ${koffi.errno()}`);
      process.exit(1);
    }
    sent++;
  }
}
close(fd);
console.log(`sent ${sent}`);
