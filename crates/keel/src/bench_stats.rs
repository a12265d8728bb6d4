//! Figures shared by the benchmark programs (`keel-bench`, `keel-load`) of the service desk:
//! latency percentiles and a process's peak resident memory.

use std::time::Duration;

/// The nearest-rank percentile `p` (0–1) of `samples`, in milliseconds.
pub fn percentile_ms(samples: &[Duration], p: f64) -> f64 {
    let mut s = samples.to_vec();
    s.sort();
    let i = (((s.len() as f64) * p).ceil() as usize).clamp(1, s.len()) - 1;
    s[i].as_secs_f64() * 1000.0
}

/// Peak resident memory (VmHWM) of a process in MB; `None` is this process.
pub fn peak_memory_mb(pid: Option<u32>) -> Option<f64> {
    let path = pid.map_or_else(|| "/proc/self/status".to_string(), |p| format!("/proc/{p}/status"));
    let status = std::fs::read_to_string(path).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}
