"""Deterministic demo reports in the format of docs/report-format.md.

`build_demo_report(seed)` returns the files an agent would upload for one ticket:
report.json, two PNG screenshots and text logs. The same seed always gives the
same bytes, so tests and benchmarks can compare hashes. Screenshots are drawn
with zlib + struct only (no Pillow) to keep the vendor-side tools dependency-free.
"""

from __future__ import annotations

import json
import random
import struct
import zlib
from datetime import datetime, timedelta, timezone

SCHEMA_VERSION = 1
REPORT_NAME = "report.json"
# report.json + 2 screenshots + 2 logs; each extra log adds one file.
BASE_FILE_COUNT = 5

DemoFile = tuple[str, bytes, str]


# --- PNG drawing -------------------------------------------------------------

class Canvas:
    """An RGB framebuffer with just the primitives a fake desktop needs."""

    def __init__(self, width: int, height: int, color: tuple[int, int, int]):
        self.width, self.height = width, height
        self.pixels = bytearray(bytes(color) * (width * height))

    def rect(self, x: int, y: int, w: int, h: int, color: tuple[int, int, int]) -> None:
        x0, x1 = max(0, x), min(self.width, x + w)
        if x1 <= x0:
            return
        run = bytes(color) * (x1 - x0)
        for row in range(max(0, y), min(self.height, y + h)):
            start = (row * self.width + x0) * 3
            self.pixels[start:start + len(run)] = run

    def frame(self, x: int, y: int, w: int, h: int, color: tuple[int, int, int]) -> None:
        self.rect(x, y, w, 1, color)
        self.rect(x, y + h - 1, w, 1, color)
        self.rect(x, y, 1, h, color)
        self.rect(x + w - 1, y, 1, h, color)

    def disc(self, cx: int, cy: int, r: int, color: tuple[int, int, int]) -> None:
        for dy in range(-r, r + 1):
            half = int((r * r - dy * dy) ** 0.5)
            self.rect(cx - half, cy + dy, 2 * half + 1, 1, color)

    def text(self, x: int, y: int, text: str, color: tuple[int, int, int],
             size: int = 7, max_width: int | None = None) -> int:
        """Draw each word as a solid block as wide as the word: reads as text at a
        glance without shipping a font. Wraps at max_width; returns the next y."""
        char_w, line_h = max(3, size * 5 // 7), size + 6
        cx = x
        for word in text.split():
            w = len(word) * char_w
            if max_width and cx > x and cx + w > x + max_width:
                cx, y = x, y + line_h
            self.rect(cx, y, w, size, color)
            cx += w + char_w
        return y + line_h

    def png(self) -> bytes:
        stride = self.width * 3
        # Filter type 0 (None) on every row: simple, and zlib still compresses
        # the flat UI colours very well.
        raw = b"".join(b"\x00" + bytes(self.pixels[r * stride:(r + 1) * stride])
                       for r in range(self.height))
        ihdr = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr)
                + _chunk(b"IDAT", zlib.compress(raw, 9)) + _chunk(b"IEND", b""))


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


WHITE, BLACK = (255, 255, 255), (30, 30, 30)
GREY, LIGHT, MID = (120, 120, 120), (240, 240, 240), (200, 200, 200)
RED = (196, 43, 28)


def _window(c: Canvas, x: int, y: int, w: int, h: int, title: str,
            accent: tuple[int, int, int], dialog: bool = False) -> None:
    c.rect(x + 6, y + 6, w, h, (0, 0, 0))          # drop shadow
    c.rect(x, y, w, h, WHITE)
    c.frame(x, y, w, h, GREY)
    c.rect(x, y, w, 30, accent)                     # title bar
    c.text(x + 12, y + 11, title, WHITE)
    c.rect(x + w - 40, y, 40, 30, RED)              # close button: an "x" of two dots
    c.rect(x + w - 24, y + 11, 8, 8, WHITE)
    if not dialog:                                  # minimise and maximise
        c.rect(x + w - 105, y + 16, 10, 2, WHITE)
        c.frame(x + w - 65, y + 10, 10, 10, WHITE)


def _desktop(rng: random.Random, width: int, height: int) -> Canvas:
    top = (rng.randint(0, 40), rng.randint(80, 120), rng.randint(140, 190))
    c = Canvas(width, height, top)
    for row in range(0, height, 4):                 # a cheap vertical gradient
        shade = tuple(max(0, v - row * 60 // height) for v in top)
        c.rect(0, row, width, 4, shade)
    for i in range(5):                              # desktop icons
        c.rect(24, 24 + i * 84, 44, 44, (230, 200, 90) if i % 2 else (220, 230, 245))
        c.text(18, 76 + i * 84, "Icon", WHITE, size=5)
    c.rect(0, height - 40, width, 40, (32, 32, 40))  # taskbar
    c.rect(8, height - 32, 24, 24, (0, 120, 215))
    for i in range(6):
        c.rect(60 + i * 48, height - 32, 32, 24, (80, 80, 96) if i != 2 else (110, 110, 140))
    c.text(width - 90, height - 24, "09:41 AM", WHITE, size=6)
    return c


def _screenshot_error_dialog(rng: random.Random, app: str, error: str) -> bytes:
    c = _desktop(rng, 960, 600)
    accent = (0, 90, 158)
    _window(c, 110, 40, 760, 470, f"Quarterly-Forecast.xlsx - {app}", accent)
    c.rect(111, 70, 758, 26, LIGHT)                  # menu bar
    c.text(122, 79, "File Home Insert Page Layout Formulas Data Review View", BLACK, size=6)
    for r in range(14):                              # a spreadsheet grid
        y = 100 + r * 28
        c.rect(111, y, 758, 1, MID)
        for col in range(7):
            if rng.random() < 0.7:
                c.rect(130 + col * 105, y + 10, rng.randint(30, 80), 7, (90, 90, 90))
    # The modal error dialog, the part help-desk staff look for.
    dx, dy = 290, 200
    _window(c, dx, dy, 400, 190, app, (60, 60, 60), dialog=True)
    c.disc(dx + 44, dy + 78, 20, RED)
    c.rect(dx + 41, dy + 64, 6, 18, WHITE)          # "!"
    c.rect(dx + 41, dy + 86, 6, 6, WHITE)
    c.text(dx + 82, dy + 54, error, BLACK, max_width=300)
    c.rect(dx + 290, dy + 148, 90, 28, (0, 120, 215))
    c.text(dx + 325, dy + 158, "OK", WHITE)
    return c.png()


def _screenshot_task_manager(rng: random.Random, processes: list[dict]) -> bytes:
    c = _desktop(rng, 960, 600)
    _window(c, 160, 30, 640, 500, "Task Manager", (45, 45, 48))
    c.text(180, 52 + 30, "Processes Performance App history Startup Users", BLACK, size=6)
    for x, label in ((180, "Name"), (560, "CPU"), (700, "Memory")):
        c.text(x, 104, label, GREY, size=5)
    c.rect(161, 116, 638, 1, MID)
    for i, proc in enumerate(processes[:16]):
        y = 124 + i * 24
        heat = min(255, int(proc["cpu_percent"] * 2.5))
        c.rect(161, y - 4, 638, 24, (255, 255 - heat // 2, 255 - heat))
        c.text(180, y + 4, proc["name"], BLACK, size=6)
        c.rect(560, y + 4, max(2, int(proc["cpu_percent"] * 1.5)), 8, (0, 120, 215))
        c.rect(700, y + 4, max(2, int(proc["memory_mb"] / 40)), 8, (120, 60, 180))
    return c.png()


# --- report content ------------------------------------------------------------

PEOPLE = [("Alice Moreau", "Finance"), ("Bilal Haddad", "Logistics"),
          ("Chen Wei", "Engineering"), ("Dana Kowalski", "Sales"),
          ("Emeka Obi", "Customer Care"), ("Freya Lindqvist", "Legal")]
PROBLEMS = [
    ("Excel crashes when saving to the shared drive",
     "Microsoft Excel", "Microsoft Excel has stopped working. A problem caused the "
     "program to stop working correctly. Windows will close the program."),
    ("Outlook freezes when opening attachments",
     "Outlook", "Outlook is not responding. The operation failed because the "
     "attachment could not be opened from the temporary folder."),
    ("VPN disconnects every few minutes",
     "GlobalConnect VPN", "The VPN connection was terminated by the remote gateway. "
     "Error 809: the network connection could not be established."),
]
PROCESS_POOL = [
    "System", "Registry", "smss.exe", "csrss.exe", "wininit.exe", "services.exe",
    "lsass.exe", "svchost.exe", "fontdrvhost.exe", "dwm.exe", "winlogon.exe",
    "explorer.exe", "sihost.exe", "taskhostw.exe", "RuntimeBroker.exe",
    "SearchHost.exe", "StartMenuExperienceHost.exe", "ctfmon.exe", "spoolsv.exe",
    "MsMpEng.exe", "NisSrv.exe", "SecurityHealthService.exe", "OneDrive.exe",
    "Teams.exe", "msedge.exe", "EXCEL.EXE", "OUTLOOK.EXE", "WINWORD.EXE",
    "vpnagent.exe", "audiodg.exe", "conhost.exe", "dllhost.exe", "WmiPrvSE.exe",
    "SearchIndexer.exe", "TextInputHost.exe", "ShellExperienceHost.exe",
    "smartscreen.exe", "CompPkgSrv.exe", "backgroundTaskHost.exe", "igfxEM.exe",
    "RtkAudUService64.exe", "DualkeyAgent.exe", "notepad.exe", "Code.exe",
]
EVENTS = [
    ("info", "Service Control Manager", 7036, "The {svc} service entered the running state."),
    ("info", "Microsoft-Windows-Winlogon", 7001, "User logon notification for Customer Experience Improvement Program."),
    ("info", "Microsoft-Windows-Kernel-General", 16, "The access history in hive \\??\\C:\\Users\\{user}\\NTUSER.DAT was cleared."),
    ("warning", "Microsoft-Windows-DNS-Client", 1014, "Name resolution for the name {host} timed out after none of the configured DNS servers responded."),
    ("warning", "Microsoft-Windows-Time-Service", 134, "NtpClient was unable to set a manual peer to use as a time source."),
    ("error", "Application Error", 1000, "Faulting application name: {app}, version: 16.0.17328.20162, faulting module name: mso.dll, exception code: 0xc0000005."),
    ("error", "Microsoft-Windows-DistributedCOM", 10016, "The application-specific permission settings do not grant Local Activation permission for the COM Server application."),
    ("info", "Microsoft-Windows-WindowsUpdateClient", 19, "Installation Successful: Windows successfully installed the following update: Security Intelligence Update for Microsoft Defender Antivirus."),
    ("warning", "disk", 153, "The IO operation at logical block address 0x2d4c10 for Disk 0 was retried."),
    ("critical", "Microsoft-Windows-Kernel-Power", 41, "The system has rebooted without cleanly shutting down first."),
    ("info", "Application Hang", 1002, "The program {app} stopped interacting with Windows and was closed."),
    ("error", "Microsoft-Windows-GroupPolicy", 1129, "The processing of Group Policy failed because of lack of network connectivity to a domain controller."),
]
SERVICES = ["Windows Update", "Print Spooler", "Windows Defender", "BITS", "Netlogon", "WinHTTP Auto-Proxy"]


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _log_text(rng: random.Random, start: datetime, app: str, lines: int,
              marker: str | None = None) -> bytes:
    levels = ["INFO"] * 6 + ["DEBUG"] * 3 + ["WARN", "ERROR"]
    msgs = [("opened workbook Q{n}-forecast.xlsx", 4), ("autosave completed in {n} ms", 900),
            ("network share latency {n} ms", 400), ("add-in loaded: plugin-{n}", 12),
            ("retrying write to \\\\fs01\\finance (attempt {n})", 5), ("cache hit ratio {n}%", 100),
            ("COM call returned 0x8001010{n}", 9)]
    out, moment = [], start
    for i in range(lines):
        moment += timedelta(seconds=rng.randint(1, 9))
        template, top = rng.choice(msgs)
        out.append(f"{_iso(moment)} {rng.choice(levels):5} [{app}] {template.format(n=rng.randint(1, top))}")
        if marker and i == lines // 2:
            out.append(f"{_iso(moment)} INFO  [{app}] user note: {marker}")
    return ("\n".join(out) + "\n").encode()


def build_demo_report(seed: int, marker: str | None = None,
                      extra_logs: int = 0) -> list[DemoFile]:
    """The files of one demo ticket as (name, bytes, content_type), report.json first.

    `marker` is planted in the subject, the message and application.log so tests
    can prove the vendor never stores report content (the subject included: it is
    what the user typed, and lives only in report.json). `extra_logs` adds that
    many small text logs (a report has BASE_FILE_COUNT + extra_logs files in all).
    """
    rng = random.Random(seed)
    submitted = datetime(2025, 3, 3, 8, 0, tzinfo=timezone.utc) + timedelta(
        minutes=rng.randint(0, 60 * 24 * 30))
    name, department = rng.choice(PEOPLE)
    subject, app, error = rng.choice(PROBLEMS)
    user_login = name.split()[0].lower()
    hostname = f"WS-{department[:3].upper()}-{rng.randint(100, 999)}"

    processes = []
    for i, proc_name in enumerate(PROCESS_POOL + rng.sample(PROCESS_POOL, 8)):
        culprit = proc_name.upper().startswith(app.split()[-1].upper()[:5])
        processes.append({
            "pid": 4 if i == 0 else rng.randint(100, 30000) // 4 * 4,
            "name": proc_name,
            "user": user_login if i > 10 and proc_name not in ("svchost.exe", "MsMpEng.exe") else "SYSTEM",
            "cpu_percent": round(rng.uniform(35, 95) if culprit else rng.expovariate(1.5), 1),
            "memory_mb": round(rng.uniform(400, 1800) if culprit else rng.lognormvariate(3.5, 1.1), 1),
            "threads": rng.randint(1, 120),
        })
    processes.sort(key=lambda p: -p["cpu_percent"])

    events = []
    moment = submitted - timedelta(hours=6)
    for _ in range(rng.randint(55, 70)):
        moment += timedelta(seconds=rng.randint(20, 400))
        level, source, event_id, template = rng.choice(EVENTS)
        events.append({"time": _iso(moment), "level": level, "source": source, "event_id": event_id,
                       "message": template.format(svc=rng.choice(SERVICES), user=user_login,
                                                  host="fs01.corp.example", app=app)})

    interval = 5
    started = submitted - timedelta(seconds=interval * 60)
    spike = rng.randint(25, 45)
    samples = []
    for i in range(60):
        busy = 1.0 if spike <= i < spike + 8 else 0.0
        samples.append({
            "t": i * interval,
            "cpu_percent": round(min(100.0, rng.uniform(4, 18) + busy * rng.uniform(60, 80)), 1),
            "memory_percent": round(min(100.0, 52 + i * 0.25 + busy * 15 + rng.uniform(-2, 2)), 1),
            "disk_io_kbps": round(rng.uniform(20, 300) + busy * rng.uniform(2000, 6000), 1),
        })

    memory_mb = rng.choice([8192, 16384, 32768])
    logs = {"application.log": _log_text(rng, started, app, 120, marker),
            "agent.log": _log_text(rng, started, "DualkeyAgent", 40)}
    for n in range(1, extra_logs + 1):
        logs[f"extra-{n:03d}.log"] = _log_text(rng, started, f"collector-{n}", 10)

    message = (f"{subject}. It started this morning after the update; I tried restarting "
               f"twice. The error says: \"{error}\"")
    if marker:
        message += f" Reference: {marker}"
        subject = f"{subject} (ref {marker})"
    screenshots = {"screenshot-1.png": _screenshot_error_dialog(rng, app, error),
                   "screenshot-2.png": _screenshot_task_manager(rng, processes)}
    report = {
        "schema_version": SCHEMA_VERSION,
        "submitted_at": _iso(submitted),
        "subject": subject,
        "user": {"name": name, "email": f"{user_login}@example.com", "department": department},
        "message": message,
        "machine": {
            "hostname": hostname, "os": "Windows", "os_version": "11 Pro 23H2 (build 22631.4317)",
            "cpu": rng.choice(["Intel(R) Core(TM) i7-1265U", "AMD Ryzen 7 PRO 6850U", "Intel(R) Core(TM) i5-1345U"]),
            "cpu_cores": rng.choice([8, 10, 12]), "memory_total_mb": memory_mb,
            "manufacturer": "Lenovo", "model": "ThinkPad T14 Gen 4",
            "uptime_seconds": rng.randint(3600, 9 * 86400), "timezone": "Europe/Paris",
            "agent_version": "2.4.1",
        },
        "system_info": [
            {"title": "Operating system", "rows": [
                ["Edition", "Windows 11 Pro"], ["Version", "23H2"], ["Build", "22631.4317"],
                ["Install date", "2024-06-12"], ["Domain", "corp.example"],
                ["Last update", _iso(submitted - timedelta(hours=9))]]},
            {"title": "Hardware", "rows": [
                ["BIOS", "Lenovo N3MET19W (1.18)"], ["Memory", f"{memory_mb // 1024} GB"],
                ["GPU", "Intel(R) Iris(R) Xe Graphics"], ["Battery health", f"{rng.randint(70, 99)}%"]]},
            {"title": "Storage", "rows": [
                ["C: (NTFS)", f"{rng.randint(20, 200)} GB free of 476 GB"],
                ["F: \\\\fs01\\finance", "mapped network drive"]]},
            {"title": "Network", "rows": [
                ["Adapter", "Intel(R) Wi-Fi 6E AX211"], ["SSID", "CORP-WIFI"],
                ["IPv4", f"10.20.{rng.randint(0, 255)}.{rng.randint(2, 254)}"],
                ["DNS servers", "10.0.0.10, 10.0.0.11"], ["VPN", "connected" if rng.random() < 0.5 else "disconnected"]]},
        ],
        "processes": processes,
        "event_log": events,
        "resource_usage": {"started_at": _iso(started), "interval_seconds": interval, "samples": samples},
        "screenshots": list(screenshots),
        "logs": list(logs),
    }
    report_bytes = json.dumps(report, indent=2, ensure_ascii=False).encode()
    return ([(REPORT_NAME, report_bytes, "application/json")]
            + [(n, data, "image/png") for n, data in screenshots.items()]
            + [(n, data, "text/plain") for n, data in logs.items()])
