"""Replays the attacks of issue 26 (rows 1-7) against a release sfs server
and prints what held: bytes stored against the quota, keys that open their
file, the server's resident memory and open descriptors under each load.

Run through bench/attacks, which builds the server and passes its paths:
    attacks.py SFS BENCH_ACCOUNT WORKDIR
"""

import json
import logging
import os
import socket
import struct
import subprocess
import sys
import threading
import time

import paramiko

SFS, BENCH_ACCOUNT, WORK = sys.argv[1:4]
# Refused channel opens are expected (row 7); paramiko would log each.
logging.getLogger("paramiko").setLevel(logging.CRITICAL)
MIB = 1 << 20
QUOTA = 10 * MIB
TUI_CELLS_TOTAL = 2_000_000


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


PORT, METRICS = free_port(), free_port()
CONFIG = os.path.join(WORK, "config.toml")
with open(CONFIG, "w") as f:
    f.write(f"""[server]
listen = "127.0.0.1:{PORT}"
host_key_dir = "{WORK}/host_keys"
[database]
url = "sqlite://{WORK}/sfs.db"
[storage]
uploads_dir = "{WORK}/uploads"
[mail]
outbox_dir = "{WORK}/outbox"
[auth]
secret_key_file = "{WORK}/host_keys/secrets.key"
[limits]
account_quota_bytes = {QUOTA}
max_sessions = 1000
max_sessions_per_ip = 200
[metrics]
listen = "127.0.0.1:{METRICS}"
[log]
level = "error"
""")


def account(name):
    key = os.path.join(WORK, name)
    if not os.path.exists(key):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True)
    subprocess.run([BENCH_ACCOUNT, CONFIG, f"{name}@example.com", key + ".pub"], check=True,
                   stdout=subprocess.DEVNULL)
    return key


KEYS = {name: account(name) for name in ["quota", "keys", "flood", "user"]}
server = subprocess.Popen([SFS, "serve", "--config", CONFIG], stderr=subprocess.PIPE)
for _ in range(100):
    try:
        socket.create_connection(("127.0.0.1", PORT)).close()
        break
    except OSError:
        time.sleep(0.1)


def status(field):
    with open(f"/proc/{server.pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def rss_mib():
    return status("VmRSS") / 1024


def descriptors():
    return len(os.listdir(f"/proc/{server.pid}/fd"))


def ssh(name, command, data=b""):
    return subprocess.run(
        ["ssh", "-i", KEYS[name], "-p", str(PORT), "-o", "StrictHostKeyChecking=no",
         "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "BatchMode=yes",
         f"{name}@example.com@127.0.0.1", command],
        input=data, capture_output=True)


def transport(name=None):
    t = paramiko.Transport(("127.0.0.1", PORT))
    if name is None:
        t.start_client()
        t.auth_interactive("guest", lambda title, instructions, prompts: [])
    else:
        t.connect(username=f"{name}@example.com",
                  pkey=paramiko.Ed25519Key.from_private_key_file(KEYS[name]))
    return t


def parallel(jobs):
    results = [None] * len(jobs)

    def run(i, job):
        results[i] = job()

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


class Peak:
    """Samples the server's resident memory until stopped."""

    def __init__(self):
        self.before, self.peak, self.running = rss_mib(), rss_mib(), True
        self.thread = threading.Thread(target=self.sample, daemon=True)
        self.thread.start()

    def sample(self):
        while self.running:
            self.peak = max(self.peak, rss_mib())
            time.sleep(0.05)

    def stop(self):
        self.running = False
        self.thread.join()
        return self.peak - self.before


def row(number, what, result):
    print(f"{number:>3}  {what:<58} {result}", flush=True)


print(f"sfs attack replay, {time.strftime('%Y-%m-%d')}; idle: {rss_mib():.1f} MiB RSS, "
      f"{descriptors()} descriptors\n")

# 1. Quota: 8 uploads of 3 MiB at once into a 10 MiB quota, then 40 of 1 MiB.
outs = parallel([lambda i=i: ssh("quota", f"put p{i}.bin", os.urandom(3 * MIB)) for i in range(8)])
stored = sum(o.returncode == 0 for o in outs)
row(1, "8 x 3 MiB `ssh put` at once, 10 MiB quota",
    f"{stored} stored = {stored * 3} MiB of {QUOTA // MIB} MiB")
ssh("quota", "rm " + " ".join(f"p{i}.bin" for i in range(8)))


def sftp_put(i):
    t = transport("quota")
    try:
        s = t.open_sftp_client()
        with s.open(f"c{i}.bin", "wb") as f:
            f.write(os.urandom(MIB))
        return True
    except (IOError, paramiko.SSHException):
        return False
    finally:
        t.close()


parallel([lambda i=i: sftp_put(i) for i in range(40)])
# paramiko ignores a refused close, so what is stored is read back.
stored = len(json.loads(ssh("quota", "ls --json").stdout))
row(1, "40 x 1 MiB sftp uploads at once, 10 MiB quota",
    f"{stored} stored = {stored} MiB of {QUOTA // MIB} MiB")

# 2. A second server on the same folders while uploads run.
uploads = [subprocess.Popen(
    ["ssh", "-i", KEYS["user"], "-p", str(PORT), "-o", "StrictHostKeyChecking=no",
     "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "BatchMode=yes",
     "user@example.com@127.0.0.1", f"put second{i}.bin"],
    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in range(4)]
for u in uploads:
    u.stdin.write(os.urandom(512 * 1024))
    u.stdin.flush()
second = subprocess.run([SFS, "serve", "--config", CONFIG], capture_output=True, timeout=60)
for u in uploads:
    u.stdin.write(os.urandom(512 * 1024))
    u.stdin.close()
done = sum(u.wait() == 0 for u in uploads)
words = second.stderr.decode(errors="replace").strip().splitlines()
row(2, "second `sfs serve` on the same folders, 4 uploads running",
    f"exit {second.returncode}")
print(f"       {words[-1] if words else ''}")
row(2, "  the uploads running meanwhile", f"{done} of 4 stored")

# 3. Waiting keys: 4 replacements of one name at once; the key NAME.key hands
# out opens NAME.
opened = rounds = 0
t = transport("keys")
s = t.open_sftp_client()
for r in range(30):
    bodies = [f"round {r} writer {w}".encode() for w in range(4)]

    def put(body):
        tt = transport("keys")
        try:
            with tt.open_sftp_client().open("x.bin", "wb") as f:
                f.write(body)
        except (IOError, paramiko.SSHException):
            pass
        finally:
            tt.close()

    parallel([lambda b=b: put(b) for b in bodies])
    rounds += 1
    try:
        with s.open("x.bin.key", "rb") as f:
            key = f.read().strip()
        with s.open("x.bin.key", "wb") as f:
            f.write(key + b"\n")
        with s.open("x.bin", "rb") as f:
            opened += f.read() in bodies
    except IOError:
        pass
    ssh("keys", "lock")
t.close()
row(3, "30 rounds of 4 replacements of one name", f"{opened} of {rounds} keys open their file")

# 4. sftp READs sent without reading replies: 9 channels, 1-byte messages.
ssh("flood", "put big.bin", os.urandom(4 * MIB))
t = transport("flood")
chans = []
for _ in range(9):
    c = t.open_session()
    c.invoke_subsystem("sftp")
    c.sendall(struct.pack(">IBI", 5, 1, 3))
    name = b"big.bin"
    c.sendall(struct.pack(">IBI", 1 + 4 + 4 + len(name) + 8, 3, 1) +
              struct.pack(">I", len(name)) + name + struct.pack(">II", 1, 0))
    buf = b""
    while True:
        buf += c.recv(65536)
        n = struct.unpack(">I", buf[:4])[0] + 4 if len(buf) >= 4 else None
        if n and len(buf) >= n + 4:
            m = struct.unpack(">I", buf[n:n + 4])[0]
            if len(buf) >= n + 4 + m:
                reply = buf[n + 4:n + 4 + m]
                handle = reply[9:9 + struct.unpack(">I", reply[5:9])[0]]
                break
    chans.append((c, handle))
peak, sent, rid = Peak(), 0, 100
deadline = time.time() + 20


def flood():
    try:
        send_reads()
    except EOFError:
        pass  # the connection closed under a stalled send


def send_reads():
    global sent, rid
    while time.time() < deadline:
        for c, h in chans:
            req = (struct.pack(">IBI", 1 + 4 + 4 + len(h) + 12, 5, rid) +
                   struct.pack(">I", len(h)) + h + struct.pack(">QI", 0, 32768))
            rid += 1
            for k in range(len(req)):
                if time.time() > deadline:
                    return
                c.send(req[k:k + 1])
                sent += 1


flooder = threading.Thread(target=flood, daemon=True)
flooder.start()
flooder.join(25)
grown = peak.stop()
row(4, f"9 sftp channels, READs never read, {sent} one-byte messages",
    f"+{grown:.0f} MiB RSS for the connection (budget 32 MiB)")
t.close()

# 5. 40 guest terminal UIs asking for 100000x100000 windows.
peak = Peak()
guests = []
for _ in range(40):
    g = transport()
    ch = g.open_session()
    ch.get_pty("xterm", 80, 24)
    ch.invoke_shell()
    time.sleep(0.05)
    ch.resize_pty(100000, 100000)
    guests.append((g, ch))
time.sleep(3)
grown = peak.stop()
row(5, "40 guest terminal UIs claiming 100000x100000",
    f"+{grown:.0f} MiB RSS, {grown / 40 * 1024:.0f} KiB each")
for g, _ in guests:
    g.close()

# 6. The metrics listener: 3,000 requests that never finish their headers.
time.sleep(2)
before = descriptors()
crowd = []
for _ in range(3000):
    try:
        c = socket.create_connection(("127.0.0.1", METRICS))
        c.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        crowd.append(c)
    except OSError:
        break
time.sleep(1)
during = descriptors()
put = ssh("user", "put during-metrics.bin", b"x" * 1000)
row(6, f"{len(crowd)} unfinished metrics requests",
    f"+{during - before} descriptors (cap 16); an upload meanwhile: "
    f"{'stored' if put.returncode == 0 else 'failed'}")
for c in crowd:
    c.close()

# 7. A guest connection opening terminal UIs, reading each first screen.
g = transport()
peak, open_tuis = Peak(), []
for _ in range(30):
    try:
        ch = g.open_session()
        ch.get_pty("xterm", 80, 24)
        ch.invoke_shell()
        ch.settimeout(2)
        ch.recv(65536)
        open_tuis.append(ch)
    except (paramiko.SSHException, socket.timeout):
        pass
time.sleep(1)
alive = sum(not ch.closed and not ch.exit_status_ready() for ch in open_tuis)
grown = peak.stop()
row(7, "a guest opening 30 terminal UIs, reading each first screen",
    f"{alive} open at once (limit 2), +{grown:.0f} MiB RSS")
g.close()

print(f"\nafter: {rss_mib():.1f} MiB RSS, {descriptors()} descriptors")
server.terminate()
server.wait(timeout=30)
