"""GPU sampler: NVML → one `gpu_stats` row per GPU per tick, plus the host's sampler status.

- Every seed column, in the seed's units (MB, °C, W, MHz, KB/s, %).
- One failing or unsupported NVML call makes that field NULL, never the sample.
- No driver (or no GPU) → no rows, and a `SamplerStatus` row whose `reason` the
  GPU page and the overview show ("No NVIDIA GPU detected: <reason>").
- One NVML initialisation per process (`NvmlSession`); PCIe throughput (a 20 ms
  measuring window in the driver) and the process list are read every
  `SLOW_READ_SECONDS` and reused in between.
- `run_sampler()` is what the django-q2 schedule starts every minute: it samples
  every `GPU_SAMPLE_INTERVAL` seconds while holding a PostgreSQL advisory lock
  keyed on the host, so two samplers never sample one host at once. django-q2
  fires schedules from a 30-second check loop, so run start times jitter by up
  to 30 s: a fixed one-minute run would either overlap the next one or leave a
  gap. Instead the next scheduled run *waits* (at most one interval) for the
  lock, the running sampler sees the waiter before its next tick and hands
  over, and the new run takes that very tick: evenly spaced samples, one
  sampler at a time. Called without `wait`, a second sampler is refused at once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import socket
import threading
import time
from dataclasses import dataclass, field

import pynvml
from django.conf import settings
from django.db import DatabaseError, OperationalError, connection, connections, transaction
from django.utils import timezone

logger = logging.getLogger(__name__)

MIB = 1024 * 1024
SLOW_READ_SECONDS = 30.0
# Upper bound of one run when no successor hands over (the scheduler stopped): the
# worker is freed well before django-q2's task timeout would kill it.
MAX_RUN_SECONDS = 600.0
# A GPU whose newest sample is older than this is shown as stale (the worker is
# down, or the GPU fell off the bus). Runs start up to ~30 s late on django-q2.
STALE_AFTER = dt.timedelta(minutes=2)

MEMORY_WARNING_PERCENT = 85.0
MEMORY_CRITICAL_PERCENT = 95.0

# nvmlClocksEventReason* bits (the newer name of "throttle reasons").
THROTTLE_REASONS: list[tuple[int, str]] = [
    (0x0001, "GPU idle"),
    (0x0002, "Applications clocks setting"),
    (0x0004, "Software power cap"),
    (0x0008, "Hardware slowdown"),
    (0x0010, "Sync boost"),
    (0x0020, "Software thermal slowdown"),
    (0x0040, "Hardware thermal slowdown"),
    (0x0080, "Hardware power brake slowdown"),
    (0x0100, "Display clock setting"),
]
_KNOWN_THROTTLE_BITS = 0
for _bit, _ in THROTTLE_REASONS:
    _KNOWN_THROTTLE_BITS |= _bit

# Why NVML could not start, in words an operator can act on.
_HINTS = {
    "NVMLError_LibraryNotFound": "libnvidia-ml.so.1 is missing: is the NVIDIA driver installed?",
    "NVMLError_DriverNotLoaded": "the NVIDIA kernel module is not loaded",
    "NVMLError_NoPermission": "this process may not access the NVIDIA device files",
    "NVMLError_LibRmVersionMismatch": "the driver library and kernel module versions differ; reboot after a driver update",
}
# Errors after which the NVML session is re-initialised on the next tick.
_SESSION_ERRORS = (
    "NVMLError_Uninitialized",
    "NVMLError_GpuIsLost",
    "NVMLError_DriverNotLoaded",
    "NVMLError_ResetRequired",
)


def decode_throttle_reasons(mask: int | None) -> list[str]:
    if not mask:
        return []
    names = [name for bit, name in THROTTLE_REASONS if mask & bit]
    unknown = mask & ~_KNOWN_THROTTLE_BITS
    if unknown:
        names.append(f"Other (0x{unknown:x})")
    return names


def memory_percent(used: float | None, total: float | None) -> float | None:
    if used is None or not total:
        return None
    return round(100.0 * used / total, 1)


def memory_pressure(used: float | None, total: float | None) -> str | None:
    """ "ok" below 85 %, "warning" from 85 %, "critical" from 95 %; None when unknown."""
    if used is None or not total:
        return None
    pct = 100.0 * used / total  # unrounded: 84.99 % is not yet a warning
    if pct >= MEMORY_CRITICAL_PERCENT:
        return "critical"
    if pct >= MEMORY_WARNING_PERCENT:
        return "warning"
    return "ok"


def nvml_module():
    """The NVML implementation this process uses: the fake when WATCHPOST_FAKE_NVML is set."""
    from monitoring.services.nvml_fake import FakeNVML

    return FakeNVML.from_env() or pynvml


def this_host() -> str:
    return (getattr(settings, "GPU_SAMPLER_HOST", "") or socket.gethostname())[:255]


def describe_nvml_error(exc: BaseException) -> str:
    name = type(exc).__name__
    text = str(exc) or name
    hint = _HINTS.get(name)
    return f"{text} ({hint})" if hint else text


def inference_fps(now: dt.datetime) -> float:
    """Detections stored in the last 60 s ÷ 60 (idx_detections_detected_at serves the range)."""
    from dashboard.models import Detection

    count = Detection.objects.filter(detected_at__gte=now - dt.timedelta(seconds=60), detected_at__lt=now).count()
    return round(count / 60.0, 3)


# --- NVML session ----------------------------------------------------------------------------


class NvmlSession:
    """nvmlInit once per process and module; device handles cached by index."""

    def __init__(self, nvml):
        self.nvml = nvml
        self.initialised = False
        self.handles: dict[int, object] = {}
        self.driver_version: str | None = None
        self.lock = threading.Lock()

    def open(self) -> None:
        if self.initialised:
            return
        self.nvml.nvmlInit()
        self.initialised = True
        self.handles = {}
        try:
            version = self.nvml.nvmlSystemGetDriverVersion()
            self.driver_version = version.decode() if isinstance(version, bytes) else str(version)
        except Exception:
            self.driver_version = None

    def reset(self) -> None:
        if self.initialised:
            try:
                self.nvml.nvmlShutdown()
            except Exception:
                pass
        self.initialised = False
        self.handles = {}

    def handle(self, index: int):
        if index not in self.handles:
            self.handles[index] = self.nvml.nvmlDeviceGetHandleByIndex(index)
        return self.handles[index]


_sessions: dict[int, NvmlSession] = {}
_last_state: dict[str, tuple] = {}
_sessions_lock = threading.Lock()


def session_for(nvml) -> NvmlSession:
    with _sessions_lock:
        session = _sessions.get(id(nvml))
        if session is None or session.nvml is not nvml:
            session = _sessions[id(nvml)] = NvmlSession(nvml)
        return session


# --- one sample --------------------------------------------------------------------------------


def _text(value) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _mib(value) -> int | None:
    return None if value is None else int(round(value / MIB))


@dataclass
class SampleResult:
    host: str
    recorded_at: dt.datetime
    available: bool
    reason: str | None = None
    rows: list = field(default_factory=list)
    details: dict = field(default_factory=dict)
    driver_version: str | None = None


class GpuSampler:
    """Reads every GPU through `nvml` (real pynvml by default) and stores the result."""

    def __init__(self, nvml=None, *, host: str | None = None, slow_read_seconds: float = SLOW_READ_SECONDS):
        self.nvml = nvml if nvml is not None else nvml_module()
        self.host = host or this_host()
        self.slow_read_seconds = slow_read_seconds
        self.session = session_for(self.nvml)
        # gpu index -> (monotonic time of the read, {field: value}, processes, errors, unsupported)
        self._slow_cache: dict[int, tuple[float, dict, list]] = {}
        self._reported: set[tuple] = set()
        self._needs_reset = False
        self._memory_v1_only = False

    # -- reading ------------------------------------------------------------------------------

    def _call(self, gpu_index: int, field_name: str, fn, errors: dict, unsupported: list):
        try:
            return fn()
        except pynvml.NVMLError as exc:
            name = type(exc).__name__
            if name == "NVMLError_NotSupported":
                unsupported.append(field_name)
            else:
                errors[field_name] = describe_nvml_error(exc)
                key = (gpu_index, field_name, name)
                if key not in self._reported:
                    self._reported.add(key)
                    logger.warning("NVML %s failed on GPU %s: %s", field_name, gpu_index, describe_nvml_error(exc))
                if name in _SESSION_ERRORS:
                    self._needs_reset = True
        except Exception as exc:  # a broken binding must cost one field, not the sample
            errors[field_name] = f"{type(exc).__name__}: {exc}"
            key = (gpu_index, field_name, type(exc).__name__)
            if key not in self._reported:
                self._reported.add(key)
                logger.warning("Reading %s from GPU %s raised %r", field_name, gpu_index, exc)
        return None

    def _memory_info(self, handle):
        # v2 counts the driver's reserved memory apart from "used", as nvidia-smi does (on an
        # idle H200, v1 says 615 MiB used where nvidia-smi says 0). Drivers before R510 lack it.
        nvml = self.nvml
        version = getattr(nvml, "nvmlMemory_v2", None)
        if version is not None and not self._memory_v1_only:
            try:
                return nvml.nvmlDeviceGetMemoryInfo(handle, version=version)
            except (pynvml.NVMLError_FunctionNotFound, pynvml.NVMLError_ArgumentVersionMismatch):
                self._memory_v1_only = True
        return nvml.nvmlDeviceGetMemoryInfo(handle)

    def _throttle_reasons(self, handle):
        nvml = self.nvml
        getter = getattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons", None)
        if getter is not None:
            try:
                return getter(handle)
            except pynvml.NVMLError_FunctionNotFound:
                pass  # older driver: fall back to the deprecated name
        return nvml.nvmlDeviceGetCurrentClocksThrottleReasons(handle)

    def _read_slow(self, index: int, handle, errors: dict, unsupported: list) -> tuple[dict, list]:
        cached = self._slow_cache.get(index)
        now = time.monotonic()
        if cached is not None and now - cached[0] < self.slow_read_seconds:
            _, values, processes, slow_errors, slow_unsupported = cached
            errors.update(slow_errors)
            unsupported.extend(slow_unsupported)
            return values, processes
        before_errors, before_unsupported = set(errors), len(unsupported)
        nvml = self.nvml
        values = {
            "pcie_tx_throughput": self._call(
                index,
                "pcie_tx_throughput",
                lambda: nvml.nvmlDeviceGetPcieThroughput(handle, nvml.NVML_PCIE_UTIL_TX_BYTES),
                errors,
                unsupported,
            ),
            "pcie_rx_throughput": self._call(
                index,
                "pcie_rx_throughput",
                lambda: nvml.nvmlDeviceGetPcieThroughput(handle, nvml.NVML_PCIE_UTIL_RX_BYTES),
                errors,
                unsupported,
            ),
        }
        procs = self._call(
            index,
            "compute_processes_count",
            lambda: nvml.nvmlDeviceGetComputeRunningProcesses(handle),
            errors,
            unsupported,
        )
        processes = []
        if procs is not None:
            for proc in procs:
                name = None
                try:
                    name = _text(nvml.nvmlSystemGetProcessName(proc.pid))
                except Exception:
                    pass
                used = getattr(proc, "usedGpuMemory", None)
                processes.append({"pid": int(proc.pid), "name": name, "used_memory_mb": _mib(used)})
            values["compute_processes_count"] = len(processes)
        else:
            values["compute_processes_count"] = None
        slow_errors = {k: v for k, v in errors.items() if k not in before_errors}
        self._slow_cache[index] = (now, values, processes, slow_errors, unsupported[before_unsupported:])
        return values, processes

    def _read_gpu(self, index: int, handle, now: dt.datetime, fps: float | None):
        from monitoring.models import GpuStat

        nvml = self.nvml
        errors: dict[str, str] = {}
        unsupported: list[str] = []

        def call(name, fn):
            return self._call(index, name, fn, errors, unsupported)

        util = call("gpu_utilization", lambda: nvml.nvmlDeviceGetUtilizationRates(handle))
        mem = call("memory_used", lambda: self._memory_info(handle))
        bar1 = call("bar1_used", lambda: nvml.nvmlDeviceGetBAR1MemoryInfo(handle))
        power_mw = call("power_usage", lambda: nvml.nvmlDeviceGetPowerUsage(handle))
        limit_mw = call("power_limit", lambda: nvml.nvmlDeviceGetEnforcedPowerLimit(handle))
        pstate = call("pstate", lambda: nvml.nvmlDeviceGetPerformanceState(handle))
        throttle = call("throttle_reasons", lambda: self._throttle_reasons(handle))
        encoder = call("encoder_utilization", lambda: nvml.nvmlDeviceGetEncoderUtilization(handle))
        decoder = call("decoder_utilization", lambda: nvml.nvmlDeviceGetDecoderUtilization(handle))
        slow, processes = self._read_slow(index, handle, errors, unsupported)

        stat = GpuStat(
            recorded_at=now,
            host=self.host,
            gpu_index=index,
            gpu_uuid=_clip(call("gpu_uuid", lambda: _text(nvml.nvmlDeviceGetUUID(handle))), 100),
            gpu_name=_clip(call("gpu_name", lambda: _text(nvml.nvmlDeviceGetName(handle))), 255),
            gpu_utilization=None if util is None else float(util.gpu),
            memory_bandwidth_utilization=None if util is None else float(util.memory),
            memory_used=None if mem is None else _mib(mem.used),
            memory_total=None if mem is None else _mib(mem.total),
            bar1_used=None if bar1 is None else _mib(bar1.bar1Used),
            temperature=_float(
                call("temperature", lambda: nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU))
            ),
            temp_slowdown_threshold=_float(
                call(
                    "temp_slowdown_threshold",
                    lambda: nvml.nvmlDeviceGetTemperatureThreshold(handle, nvml.NVML_TEMPERATURE_THRESHOLD_SLOWDOWN),
                )
            ),
            power_usage=None if power_mw is None else round(power_mw / 1000.0, 3),
            power_limit=None if limit_mw is None else round(limit_mw / 1000.0, 3),
            fan_speed=_int(call("fan_speed", lambda: nvml.nvmlDeviceGetFanSpeed(handle))),
            sm_clock=_int(call("sm_clock", lambda: nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_SM))),
            sm_clock_max=_int(call("sm_clock_max", lambda: nvml.nvmlDeviceGetMaxClockInfo(handle, nvml.NVML_CLOCK_SM))),
            memory_clock=_int(call("memory_clock", lambda: nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_MEM))),
            memory_clock_max=_int(
                call("memory_clock_max", lambda: nvml.nvmlDeviceGetMaxClockInfo(handle, nvml.NVML_CLOCK_MEM))
            ),
            # NVML reports 32 for "unknown" performance state.
            pstate=None if pstate is None or not 0 <= int(pstate) <= 15 else int(pstate),
            # The mask is 64-bit; every defined reason fits in the seed's 32-bit column.
            throttle_reasons=None if throttle is None else int(throttle) & 0x7FFFFFFF,
            pcie_replay_counter=_int(call("pcie_replay_counter", lambda: nvml.nvmlDeviceGetPcieReplayCounter(handle))),
            pcie_link_gen=_int(call("pcie_link_gen", lambda: nvml.nvmlDeviceGetCurrPcieLinkGeneration(handle))),
            pcie_link_width=_int(call("pcie_link_width", lambda: nvml.nvmlDeviceGetCurrPcieLinkWidth(handle))),
            pcie_tx_throughput=_int(slow["pcie_tx_throughput"]),
            pcie_rx_throughput=_int(slow["pcie_rx_throughput"]),
            compute_processes_count=slow["compute_processes_count"],
            encoder_utilization=None if encoder is None else _int(encoder[0]),
            decoder_utilization=None if decoder is None else _int(decoder[0]),
            inference_fps=fps,
        )
        detail = {
            "index": index,
            "uuid": stat.gpu_uuid,
            "name": stat.gpu_name,
            "processes": processes,
            "unsupported": sorted(set(unsupported)),
            "errors": errors,
        }
        return stat, detail

    def sample(self, now: dt.datetime | None = None) -> SampleResult:
        """Read every GPU once. Never raises for NVML trouble: it becomes the status reason."""
        now = now or timezone.now()
        self._needs_reset = False
        result = SampleResult(host=self.host, recorded_at=now, available=False)
        with self.session.lock:
            try:
                self.session.open()
                count = self.nvml.nvmlDeviceGetCount()
            except pynvml.NVMLError as exc:
                self.session.reset()
                result.reason = describe_nvml_error(exc)
                return result
            except Exception as exc:
                self.session.reset()
                result.reason = f"NVML could not start: {type(exc).__name__}: {exc}"
                return result
            result.driver_version = self.session.driver_version
            if count == 0:
                result.reason = "NVML reports no NVIDIA GPU on this host"
                return result
            try:
                fps = inference_fps(now)
            except DatabaseError:
                raise
            except Exception:
                fps = None
            gpus_detail = []
            lost = []
            for index in range(count):
                try:
                    handle = self.session.handle(index)
                except Exception as exc:
                    lost.append(f"GPU {index}: {describe_nvml_error(exc)}")
                    gpus_detail.append({"index": index, "error": describe_nvml_error(exc)})
                    continue
                stat, detail = self._read_gpu(index, handle, now, fps)
                result.rows.append(stat)
                gpus_detail.append(detail)
            if self._needs_reset:
                self.session.reset()
                self._slow_cache.clear()
        result.details = {"gpus": gpus_detail}
        result.available = bool(result.rows)
        if not result.rows:
            result.reason = "; ".join(lost) or "no GPU could be read"
        return result

    def store(self, result: SampleResult) -> None:
        from monitoring.models import GpuStat, SamplerStatus

        status = SamplerStatus(
            host=result.host,
            available=result.available,
            reason=result.reason or "",
            gpu_count=len(result.rows),
            driver_version=(result.driver_version or "")[:80],
            details=result.details,
            updated_at=result.recorded_at,
        )
        with transaction.atomic():
            if result.rows:
                GpuStat.objects.bulk_create(result.rows)
            # One statement whatever the previous state: INSERT ... ON CONFLICT (host) DO UPDATE.
            SamplerStatus.objects.bulk_create(
                [status],
                update_conflicts=True,
                unique_fields=["host"],
                update_fields=["available", "reason", "gpu_count", "driver_version", "details", "updated_at"],
            )
        state = (result.available, result.reason, len(result.rows))
        if _last_state.get(result.host) != state:
            # Log changes only, once per process: a GPU-less host must not write a log
            # line every 5 s, nor a healthy one every minute (one run per minute).
            if result.available:
                logger.info("GPU sampler on %s: %d GPU(s) found", result.host, len(result.rows))
            else:
                logger.warning("GPU sampler on %s: no NVIDIA GPU detected: %s", result.host, result.reason)
            _last_state[result.host] = state

    def sample_and_store(self, now: dt.datetime | None = None) -> SampleResult:
        result = self.sample(now)
        self.store(result)
        return result


def _clip(value, length: int):
    return None if value is None else str(value)[:length]


def _int(value) -> int | None:
    if value is None:
        return None
    try:
        value = int(value)
    except (TypeError, ValueError):
        return None
    return value if -(2**31) <= value < 2**31 else None


def _float(value) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


# --- one sampler per host ----------------------------------------------------------------------


def advisory_key(host: str) -> int:
    """A signed 64-bit key for pg_try_advisory_lock, stable across processes and hosts."""
    digest = hashlib.blake2b(f"watchpost.gpu_sampler:{host}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class HostLock:
    """A session-level PostgreSQL advisory lock held on a connection of its own.

    Its own connection, because Django's connection is closed and reopened
    between tasks (CONN_MAX_AGE, close_old_connections) and a session lock goes
    with the session that took it.
    """

    def __init__(self, host: str, alias: str = "default"):
        self.host = host
        self.alias = alias
        self.key = advisory_key(host)
        unsigned = self.key & 0xFFFFFFFFFFFFFFFF
        # How pg_locks shows a one-bigint advisory lock.
        self._classid, self._objid = unsigned >> 32, unsigned & 0xFFFFFFFF
        self.conn = None
        self.acquired = False
        # Set when the last acquire() failed because the database was unreachable
        # (rather than because another sampler holds the lock).
        self.error: Exception | None = None

    def acquire(self, wait: float = 0.0) -> bool:
        """Take the lock, waiting up to `wait` seconds for the holder to hand it over."""
        self.release()
        self.error = None
        self.conn = connections.create_connection(self.alias)
        try:
            with self.conn.cursor() as cur:
                if wait > 0:
                    cur.execute("SELECT set_config('lock_timeout', %s, false)", [f"{int(wait * 1000)}ms"])
                    try:
                        cur.execute("SELECT pg_advisory_lock(%s)", [self.key])
                        self.acquired = True
                    except OperationalError as exc:
                        if getattr(exc.__cause__, "sqlstate", None) != "55P03":  # lock_not_available
                            raise
                        self.acquired = False
                else:
                    cur.execute("SELECT pg_try_advisory_lock(%s)", [self.key])
                    self.acquired = bool(cur.fetchone()[0])
        except DatabaseError as exc:
            self.error = exc
            self.acquired = False
        if not self.acquired:
            self._close()
        return self.acquired

    def has_waiter(self) -> bool:
        """True when another session is waiting for this lock (the next scheduled run)."""
        if self.conn is None:
            return False
        try:
            with self.conn.cursor() as cur:
                cur.execute(
                    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                    " AND classid = %s AND objid = %s AND objsubid = 1"
                    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))",
                    [self._classid, self._objid],
                )
                return bool(cur.fetchone()[0])
        except DatabaseError:
            return False

    def still_held(self) -> bool:
        """After a database outage the session (and its lock) may be gone: check, and retake if free."""
        if self.conn is not None:
            try:
                with self.conn.cursor() as cur:
                    cur.execute("SELECT 1")
                return True
            except DatabaseError:
                self._close()
        return self.acquire()

    def release(self) -> None:
        if self.conn is not None and self.acquired:
            try:
                with self.conn.cursor() as cur:
                    cur.execute("SELECT pg_advisory_unlock(%s)", [self.key])
            except DatabaseError:
                pass  # the session is gone, and the lock with it
        self._close()

    def _close(self) -> None:
        self.acquired = False
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:
                pass
            self.conn = None

    def __enter__(self) -> HostLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def sample_safely(sampler: GpuSampler) -> SampleResult | None:
    """One tick that never raises: database and NVML trouble are logged and retried next tick."""
    try:
        result = sampler.sample_and_store()
        if getattr(sampler, "_db_failing", False):
            logger.info("GPU samples are stored again on %s", sampler.host)
            sampler._db_failing = False
        return result
    except DatabaseError as exc:
        if not getattr(sampler, "_db_failing", False):  # once per outage, not once per tick
            logger.warning("GPU samples could not be stored (will retry): %s", exc)
            sampler._db_failing = True
        # Drop the broken connection so the next tick opens a fresh one.
        try:
            connection.close()
        except Exception:
            pass
    except Exception:
        logger.exception("GPU sampler tick failed (will retry)")
    return None


def handover_wait(interval: float | None = None) -> float:
    """How long a scheduled run waits for the running one: it hands over before its next tick."""
    return float(interval or settings.GPU_SAMPLE_INTERVAL) + 10.0


class ShutdownClaim:
    """Asks this host's running sampler to stop, and keeps new runs from starting, while the
    worker shuts down (`make run`'s Ctrl-C).

    A sampler run lasts up to MAX_RUN_SECONDS and django-q2 lets a stopping worker finish
    its task, so without this the worker took minutes to stop. Waiting for the host lock
    is the handover request the sampler already answers at its next tick; holding the
    lock until release() makes a run started meanwhile give up after handover_wait().
    """

    def __init__(self, host: str | None = None, wait: float | None = None):
        self.lock = HostLock(host or this_host())
        self.wait = handover_wait() if wait is None else wait
        self._done = threading.Event()
        # One thread takes, holds and gives back the lock: a Django connection may only be
        # used by the thread that opened it.
        self._thread = threading.Thread(target=self._hold, name="watchpost-sampler-claim", daemon=True)

    def _hold(self) -> None:
        try:
            self.lock.acquire(wait=self.wait)
            self._done.wait()
        except Exception:  # a shutdown must go on whatever the database does
            logger.debug("sampler shutdown claim failed", exc_info=True)
        finally:
            self.lock.release()

    def start(self) -> ShutdownClaim:
        self._thread.start()
        return self

    def release(self) -> None:
        self._done.set()
        self._thread.join(timeout=self.wait + 5)


def max_run_seconds() -> float:
    """MAX_RUN_SECONDS, kept clear of django-q2's task timeout."""
    timeout = float(getattr(settings, "Q_CLUSTER", {}).get("timeout") or MAX_RUN_SECONDS + 60)
    return max(30.0, min(MAX_RUN_SECONDS, timeout - 30.0))


def run_sampler(
    duration: float | None = None,
    interval: float | None = None,
    *,
    wait: float | None = None,
    sampler: GpuSampler | None = None,
    sleep=time.sleep,
    clock=time.monotonic,
) -> dict:
    """Sample every `interval` seconds until a successor asks for the host lock (or `duration` ends).

    `wait`: how long to wait for a running sampler to hand the lock over; 0 (the
    default) refuses at once. A run that gets no lock returns {"skipped": True}
    without sampling. The scheduled task waits `handover_wait()`.
    """
    interval = float(interval or settings.GPU_SAMPLE_INTERVAL)
    duration = max_run_seconds() if duration is None else float(duration)
    wait = 0.0 if wait is None else float(wait)
    sampler = sampler or GpuSampler()
    lock = HostLock(sampler.host)
    if not lock.acquire(wait=wait):
        if lock.error is not None:
            logger.warning("GPU sampler on %s cannot reach the database: %s", sampler.host, lock.error)
        else:
            logger.info("GPU sampler on %s skipped: another sampler holds the host lock", sampler.host)
        return {"host": sampler.host, "ticks": 0, "stored": 0, "skipped": True, "handed_over": False}
    ticks = stored = 0
    handed_over = False
    outage_logged = False
    try:
        start = next_at = clock()
        while True:
            if ticks and lock.has_waiter():
                # The next scheduled run is waiting: it takes this tick.
                handed_over = True
                break
            if not lock.acquired and not lock.acquire():
                if lock.error is None:
                    logger.warning("GPU sampler on %s lost its host lock to another sampler; stopping", sampler.host)
                    break
                # The database is still away: no lock, so no sample; try again next tick.
            elif sample_safely(sampler) is not None:
                stored += 1
                outage_logged = False
            elif not lock.still_held() and lock.error is None:
                logger.warning("GPU sampler on %s lost its host lock to another sampler; stopping", sampler.host)
                break
            if not lock.acquired and lock.error is not None and not outage_logged:
                logger.warning("GPU sampler on %s: database unreachable, retrying every %s s", sampler.host, interval)
                outage_logged = True
            ticks += 1
            # Anchored to the start, so slow ticks do not make the cadence drift.
            next_at += interval
            if next_at - start >= duration - 0.001:
                break
            sleep(max(0.0, next_at - clock()))
    finally:
        lock.release()
    return {"host": sampler.host, "ticks": ticks, "stored": stored, "skipped": False, "handed_over": handed_over}


# --- what the pages show -----------------------------------------------------------------------


def gpu_card(stat, processes: list | None = None, now: dt.datetime | None = None) -> dict:
    """A GPU's latest sample with what the card shows derived from it."""
    now = now or timezone.now()
    return {
        "host": stat.host,
        "index": stat.gpu_index,
        "uuid": stat.gpu_uuid,
        "name": stat.gpu_name,
        "key": f"{stat.host}:{stat.gpu_index}",
        "recorded_at": stat.recorded_at,
        "stale": now - stat.recorded_at > STALE_AFTER,
        "sample": stat,
        "memory_percent": memory_percent(stat.memory_used, stat.memory_total),
        "memory_pressure": memory_pressure(stat.memory_used, stat.memory_total),
        "temperature_percent": _ratio(stat.temperature, stat.temp_slowdown_threshold),
        "temperature_level": _temperature_level(stat.temperature, stat.temp_slowdown_threshold),
        "power_percent": _ratio(stat.power_usage, stat.power_limit),
        "sm_clock_percent": _ratio(stat.sm_clock, stat.sm_clock_max),
        "memory_clock_percent": _ratio(stat.memory_clock, stat.memory_clock_max),
        "throttle_reasons": decode_throttle_reasons(stat.throttle_reasons),
        "processes": processes or [],
    }


def _ratio(value, limit) -> float | None:
    if value is None or not limit:
        return None
    return round(min(100.0, 100.0 * value / limit), 1)


def _temperature_level(temp, slowdown) -> str | None:
    if temp is None:
        return None
    if slowdown:
        if temp >= slowdown:
            return "critical"
        if temp >= slowdown - 5:
            return "warning"
    return "ok"


def gpu_status(now: dt.datetime | None = None) -> dict:
    """What the GPU page and the overview show: two queries, whatever the table size.

    Returns {"available": bool, "reason": str | None, "gpus": [gpu_card(...)], "hosts": [...],
    "known_gpus": [{"key", "host", "index", "name"}]} (known_gpus: every GPU with history).
    `available` is False when no host's sampler found a GPU (the reason says why,
    e.g. "NVML Shared Library Not Found (...)") or no sampler has reported yet.
    """
    from monitoring.models import GpuStat, SamplerStatus

    now = now or timezone.now()
    statuses = {s.host: s for s in SamplerStatus.objects.all()}
    cards = []
    known = []
    for stat in GpuStat.objects.latest_per_gpu():
        known.append(
            {"key": f"{stat.host}:{stat.gpu_index}", "host": stat.host, "index": stat.gpu_index, "name": stat.gpu_name}
        )
        status = statuses.get(stat.host)
        if status is not None and not status.available:
            continue  # that host's driver is gone now: its old samples are history, not GPUs
        processes = []
        if status is not None:
            for detail in (status.details or {}).get("gpus", []):
                if detail.get("index") == stat.gpu_index:
                    processes = detail.get("processes") or []
        cards.append(gpu_card(stat, processes, now))
    available = any(s.available for s in statuses.values()) or (not statuses and any(not c["stale"] for c in cards))
    reason = None
    if not available:
        if statuses:
            reasons = [s for s in statuses.values() if not s.available]
            if len(reasons) == 1:
                reason = reasons[0].reason
            else:
                reason = "; ".join(f"{s.host}: {s.reason}" for s in reasons)
        elif cards:
            reason = "no recent samples: the GPU sampler has stopped (is the worker running?)"
        else:
            reason = "the GPU sampler has not reported yet (is the worker running?)"
    hosts = [
        {
            "host": s.host,
            "available": s.available,
            "reason": s.reason,
            "gpu_count": s.gpu_count,
            "driver_version": s.driver_version,
            "updated_at": s.updated_at,
            "stale": now - s.updated_at > STALE_AFTER,
        }
        for s in statuses.values()
    ]
    return {"available": available, "reason": reason, "gpus": cards, "hosts": hosts, "known_gpus": known}
