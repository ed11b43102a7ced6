"""The device side of firmware_image stays light: importing the update agent, its maintenance port, ``pos-fw`` and
the boot launcher imports neither the ``smp`` package nor its pydantic and cbor2; the SMP server is made (and
they are imported) at the first SMP request, which is then answered as before. Run in a fresh interpreter, so
nothing else has imported them first."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from smp import packet as smppacket
from smp.os_management import EchoWriteRequest, EchoWriteResponse

from firmware_image import smp_serial
from firmware_image.protocol import SYNC_MAGIC, Kind, SlipDecoder, encode_frame

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("smp", "pydantic", "cbor2")

CHILD = """
import json, sys
from firmware_image import agent_shell, boot, cli, cli_device, maintenance, smp_serial  # what a device imports
from firmware_image.flash import SimFlash
heavy = lambda: sorted(m for m in {heavy!r} if m in sys.modules)
flash = SimFlash.create(sys.argv[1], slot_sectors=16, sector_size=1024)
port = agent_shell.maintenance_port(flash, [], "iotsim-pos-test")
at_import = heavy()
port.receive_data(bytes.fromhex(sys.argv[2]))  # POSFW1 only
after_posfw = heavy()
posfw_out = port.data_to_send().hex()
port.receive_data(bytes.fromhex(sys.argv[3]))  # an SMP echo request
print(json.dumps({{"at_import": at_import, "after_posfw": after_posfw, "after_smp": heavy(),
                  "posfw_out": posfw_out, "smp_out": port.data_to_send().hex()}}))
"""


def test_the_agent_imports_smp_only_at_the_first_smp_request(tmp_path: Path) -> None:
    posfw = encode_frame(Kind.SYNC, SYNC_MAGIC)
    echo = b"".join(smppacket.encode(EchoWriteRequest(d="light", sequence=3).BYTES))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-c", CHILD.format(heavy=HEAVY), str(tmp_path / "flash.bin"),
                          posfw.hex(), echo.hex()], capture_output=True, text=True, timeout=60, env=env, cwd=ROOT,
                         check=False)
    assert run.returncode == 0, run.stderr
    seen = json.loads(run.stdout.splitlines()[-1])
    assert seen["at_import"] == [] and seen["after_posfw"] == []
    assert seen["after_smp"] == sorted(HEAVY)
    slip = SlipDecoder()
    slip.feed(bytes.fromhex(seen["posfw_out"]))
    hello = slip.next_frame()
    assert hello is not None and hello.kind is Kind.HELLO  # POSFW1 answered without SMP
    decoder = smppacket.decode()
    next(decoder)
    answer = None
    for line in bytes.fromhex(seen["smp_out"]).splitlines(keepends=True):
        try:
            decoder.send(line)
        except StopIteration as done:
            answer = EchoWriteResponse.loads(done.value)
    assert answer is not None and answer.r == "light" and answer.header is not None
    assert answer.header.sequence == 3


def test_the_framing_constants_are_the_smp_packages() -> None:
    assert (smp_serial.START, smp_serial.CONTINUE) == (smppacket.START_DELIMITER, smppacket.CONTINUE_DELIMITER)
    message = EchoWriteRequest(d="x" * 300, sequence=1).BYTES
    decoder = smp_serial.SmpLineDecoder(smp_serial.BUF_SIZE)
    for line in smp_serial.encode_frame(message, line_length=40):
        decoder.feed_line(line)
    assert decoder.next_frame() == message
