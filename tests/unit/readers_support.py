"""Shared material for the reader tests: a small DBC that covers what the shared DBCs lack, and sample builders."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from trustlane.ingest.model import ConsentRecord
from trustlane.ingest.readers import samples

START_NS = 1_700_000_000_123_456_789

CONSENTS = (
    ConsentRecord("cabin-audio", "consent", 1_690_000_000_000_000_000, 1_790_000_000_000_000_000, "consent/42"),
    ConsentRecord("location-precise", "contract", 1_695_000_000_000_000_000),
)

# Motorola (big-endian) signed/unsigned, an extended ID, IEEE floats, multiplexing, a 64-byte CAN FD message with
# 64-bit signals spanning nine bytes, and a choice table.
TEST_DBC = """VERSION ""

NS_ :

BS_:

BU_: ECU

BO_ 256 MOTOROLA: 8 ECU
 SG_ SignedBig : 7|12@0- (0.5,-3) [-1000|1000] "m" ECU
 SG_ Counter : 11|4@0+ (1,0) [0|15] "" ECU
 SG_ Temp : 23|16@0+ (0.1,-40) [-40|6513.5] "degC" ECU
 SG_ LongBE : 39|32@0+ (1,0) [0|4294967295] "" ECU

BO_ 2147483905 EXTENDED: 8 ECU
 SG_ Value : 0|32@1- (1,0) [0|0] "" ECU
 SG_ Mode : 32|8@1+ (1,0) [0|255] "" ECU

BO_ 512 FLOATS: 8 ECU
 SG_ F32 : 0|32@1- (1,0) [0|0] "" ECU
 SG_ F32b : 32|32@1- (2,1) [0|0] "" ECU

BO_ 513 DOUBLE: 8 ECU
 SG_ F64 : 0|64@1- (1,0) [0|0] "" ECU

BO_ 768 MUXED: 8 ECU
 SG_ Mux M : 0|8@1+ (1,0) [0|255] "" ECU
 SG_ A m0 : 8|16@1+ (0.1,0) [0|6553.5] "km/h" ECU
 SG_ B m1 : 8|16@1- (1,0) [-32768|32767] "" ECU
 SG_ Common : 24|8@1+ (1,0) [0|255] "" ECU

BO_ 1024 FDMSG: 64 ECU
 SG_ Wide : 3|64@1+ (1,0) [0|0] "" ECU
 SG_ WideBE : 84|64@0+ (1,0) [0|0] "" ECU
 SG_ WideSigned : 203|63@1- (1,0) [0|0] "" ECU
 SG_ Tail : 504|8@1+ (1,0) [0|255] "" ECU

BO_ 1280 CHOICES: 1 ECU
 SG_ Gear : 0|4@1+ (1,0) [0|15] "" ECU

CM_ SG_ 256 Temp "Coolant temperature";
VAL_ 1280 Gear 0 "P" 1 "R" 2 "N" 3 "D" ;
SIG_VALTYPE_ 512 F32 : 1;
SIG_VALTYPE_ 512 F32b : 1;
SIG_VALTYPE_ 513 F64 : 2;
"""


def write_test_dbc(directory: Path) -> Path:
    path = directory / "test.dbc"
    path.write_text(TEST_DBC, encoding="utf-8")
    return path


def mdf_channels() -> dict[str, samples.Samples]:
    """Two rates (so two data groups), numbers of several types, and a text channel."""
    fast = np.arange(50) * 0.01
    slow = np.arange(5) * 0.1 + 0.005
    return {
        "speed": (fast, np.linspace(0.0, 33.3, 50), "km/h"),
        "rpm": (fast, np.arange(50, dtype=np.uint16) * 40, "1/min"),
        "torque": (slow, np.array([-5, -1, 0, 7, 12], dtype=np.int32), "Nm"),
        "gear_text": (slow, np.array(["P", "R", "N", "D", "D\u00e9"]), None),
    }


def table_channels() -> dict[str, samples.Samples]:
    """A fast float channel, a slower int channel (sparse rows), a flag and a text channel."""
    fast = START_NS + np.arange(10, dtype=np.int64) * 10_000_000
    return {
        "speed": (fast, np.linspace(1.5, 30.25, 10), "km/h"),
        "gear": (fast[::3], np.array([1, 2, 3, 4], dtype=np.int64), None),
        "braking": (fast[::2], np.array([True, False, True, False, True]), None),
        "driver_note": (fast[1::5], np.array(["ok", 'a,b "quoted"']), None),
    }


def write_all(directory: Path, dbc: Path) -> dict[str, tuple[Path, Path | None]]:
    """One small valid file per format: {format: (path, dbc or None)}."""
    return {
        "mdf4": (samples.write_mdf4(directory / "s.mf4", mdf_channels(), START_NS, consents=CONSENTS), None),
        "csv": (samples.write_csv(directory / "s.csv", table_channels()), None),
        "parquet": (samples.write_parquet(directory / "s.parquet", table_channels(), consents=CONSENTS), None),
        "candump": (
            samples.write_candump(
                directory / "s.log",
                dbc,
                [
                    samples.CanFrame(START_NS + i * 1000, "MOTOROLA", {"SignedBig": -2.5 + i, "Temp": 20.5})
                    for i in range(5)
                ]
                + [samples.RawCanFrame(START_NS + 10**6, 0x7AA, b"\x01\x02")],
            ),
            dbc,
        ),
        "mcap": (
            samples.write_mcap(
                directory / "s.mcap",
                [("/car", START_NS + i, {"speed": i * 0.5, "state": {"on": True}}) for i in range(5)],
                metadata={"vin": "TEST"},
                consents=CONSENTS,
            ),
            None,
        ),
    }


# Targets for the sandbox tests (run in the fork server's children).


def crash(path: Path) -> None:
    import os
    import signal

    os.kill(os.getpid(), signal.SIGSEGV)


def hang(path: Path) -> None:
    import time

    time.sleep(60)


def hog(path: Path) -> bytes:
    return b"x" * (8 << 30)


def refuse(path: Path) -> None:
    from trustlane.errors import UsageError

    raise UsageError(f"{path}: refused", hint="do something else")


def fail(path: Path) -> None:
    raise KeyError("library internals")


def echo(path: Path) -> str:
    return path.read_text()


def noisy(path: Path) -> str:
    import sys

    print("chatter on stdout")
    print("chatter on stderr", file=sys.stderr)
    return "quiet result"


def arrays(path: Path) -> dict[str, object]:
    """Large and small arrays (out of band and in band), text objects and a non-contiguous view."""
    import numpy as np

    size = int(path.read_text())
    return {
        "times": np.arange(size, dtype=np.int64),
        "values": np.linspace(0.0, 1.0, size),
        "small": np.arange(3.0),
        "text": np.array(["a", "ü"], dtype=object),
        "strided": np.arange(size, dtype=np.float64)[::3],
    }


def stop_while_writing(path: Path) -> None:
    """Exit normally without writing a result, as a child stopped between parsing and writing would."""
    import os

    os._exit(0)
