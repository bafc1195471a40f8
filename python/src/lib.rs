//! The native half of the `sockscope` Python package: the library's analysis, handed to Python
//! as Arrow record batches through the Arrow C data interface. Arguments are checked and
//! documented in `sockscope/__init__.py`.

use std::path::PathBuf;
use std::sync::Mutex;

use arrow_array::RecordBatch;
use arrow_pyarrow::ToPyArrow;
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyStopIteration, PyValueError};
use pyo3::prelude::*;

use sockscope::flow::table::Timeouts;
use sockscope::flow::udp_conn_state;
use sockscope::report::arrow::{sockets_batch, ConnBatches};
use sockscope::tcp::endpoint::State;
use sockscope::tcp::verdict::{self, Side};
use sockscope::types::Duration;
use sockscope::{Analyzer, Connections, Filter, Options};

create_exception!(_sockscope, Error, PyException, "A sockscope analysis could not be done.");
create_exception!(
    _sockscope,
    CaptureError,
    Error,
    "An input could not be read as a capture; the message names the file and the reason."
);

/// The analysis settings every function takes, as `sockscope/__init__.py` passes them (a dict,
/// checked here as the command line checks its options).
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
struct Settings {
    filter: Option<Vec<String>>,
    tcp_timeout: f64,
    udp_timeout: f64,
    max_connections: u64,
    no_decap: bool,
    jobs: usize,
    community_id_seed: u16,
    end_order: bool,
}

impl Settings {
    /// The analyzer they ask for, as the command line makes it.
    fn analyzer(self) -> PyResult<Analyzer> {
        let seconds = |name: &str, s: f64| {
            Duration::from_secs_f64(s).ok_or_else(|| {
                PyValueError::new_err(format!("{name}: '{s}' is not a number of seconds (0 or more)"))
            })
        };
        let filters = self
            .filter
            .unwrap_or_default()
            .iter()
            .map(|f| {
                Filter::parse(f).map_err(|e| PyValueError::new_err(format!("invalid filter '{f}': {e}")))
            })
            .collect::<PyResult<Vec<_>>>()?;
        if self.max_connections == 0 {
            return Err(PyValueError::new_err("max_connections: must be at least 1"));
        }
        let options = Options {
            timeouts: Timeouts {
                tcp: seconds("tcp_timeout", self.tcp_timeout)?,
                udp: seconds("udp_timeout", self.udp_timeout)?,
            },
            max_connections: usize::try_from(self.max_connections).unwrap_or(usize::MAX),
            decap: !self.no_decap,
            jobs: match self.jobs {
                0 => std::thread::available_parallelism().map_or(1, |n| n.get().min(8)),
                n => n,
            },
            end_order: self.end_order,
            progress: None,
            community_id_seed: Some(self.community_id_seed),
            numbered: true,
        };
        Ok(Analyzer { options, filter: Filter::all(filters) })
    }
}

fn to_py(e: sockscope::Error) -> PyErr {
    match e {
        sockscope::Error::Input { .. } => CaptureError::new_err(e.to_string()),
        sockscope::Error::Io(e) => Error::new_err(e.to_string()),
    }
}

fn arrow_err(e: arrow_schema::ArrowError) -> PyErr {
    Error::new_err(e.to_string())
}

/// Record batches of connections, read from the analysis as Python asks for them.
#[pyclass(module = "sockscope._sockscope")]
struct Batches {
    state: Mutex<Reading>,
    size: usize,
}

struct Reading {
    conns: Connections,
    builder: ConnBatches,
    done: bool,
    /// An input's error, raised once the rows before it were handed out.
    failed: Option<PyErr>,
}

impl Reading {
    /// Up to `size` connections as one batch; `None` after the last.
    fn next(&mut self, size: usize) -> Result<Option<RecordBatch>, PyErr> {
        while !self.done && self.builder.len() < size {
            match self.conns.next() {
                Some(Ok(record)) => self.builder.push(&record),
                Some(Err(e)) => {
                    self.done = true;
                    self.failed = Some(to_py(e));
                }
                None => self.done = true,
            }
        }
        if self.builder.is_empty() {
            return self.failed.take().map_or(Ok(None), Err);
        }
        self.builder.take().map(Some).map_err(arrow_err)
    }
}

#[pymethods]
impl Batches {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        // The analysis runs without the GIL: other Python threads go on meanwhile.
        let next = py.detach(|| match self.state.lock() {
            Ok(mut reading) => reading.next(self.size),
            Err(_) => Err(Error::new_err("the batches were poisoned")),
        });
        match next? {
            Some(batch) => batch.to_pyarrow(py),
            None => Err(PyStopIteration::new_err(())),
        }
    }

    /// The schema of every batch, as a `pyarrow.Schema`.
    #[getter]
    fn schema<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let reading = self.state.lock().map_err(|_| Error::new_err("the batches were poisoned"))?;
        reading.builder.schema().as_ref().to_pyarrow(py)
    }

    /// The first and the last packet's times in nanoseconds since the epoch, once every batch
    /// was read; `None` before, or without packets.
    fn span(&self) -> PyResult<Option<(u64, u64)>> {
        let reading = self.state.lock().map_err(|_| Error::new_err("the batches were poisoned"))?;
        let analysis = reading.conns.analysis();
        Ok(analysis.and_then(|a| Some((a.first_ts?.nanos(), a.last_ts?.nanos()))))
    }

    /// The run's warnings (a capture cut short, connections evicted), once every batch was read.
    fn warnings(&self) -> PyResult<Vec<String>> {
        let reading = self.state.lock().map_err(|_| Error::new_err("the batches were poisoned"))?;
        Ok(reading.conns.analysis().map(|a| a.warnings()).unwrap_or_default())
    }
}

/// Connections of `paths` in batches of up to `batch_size` rows.
#[pyfunction]
fn batches(paths: Vec<PathBuf>, settings: Settings, batch_size: usize) -> PyResult<Batches> {
    let analyzer = settings.analyzer()?;
    if batch_size == 0 {
        return Err(PyValueError::new_err("batch_size: must be at least 1"));
    }
    let builder = ConnBatches::new();
    let reading = Reading { conns: analyzer.connections(&paths), builder, done: false, failed: None };
    Ok(Batches { state: Mutex::new(reading), size: batch_size })
}

/// The socket inventory of `paths` as one record batch, and the run's warnings.
#[pyfunction]
fn sockets<'py>(
    py: Python<'py>,
    paths: Vec<PathBuf>,
    settings: Settings,
) -> PyResult<(Bound<'py, PyAny>, Vec<String>)> {
    let analyzer = settings.analyzer()?;
    let (sockets, analysis) = py.detach(|| analyzer.sockets(&paths)).map_err(to_py)?;
    Ok((sockets_batch(&sockets).map_err(arrow_err)?.to_pyarrow(py)?, analysis.warnings()))
}

/// The summary of `paths` as `sockscope summary --format json` prints it, and the run's
/// warnings.
#[pyfunction]
fn summary(py: Python<'_>, paths: Vec<PathBuf>, settings: Settings) -> PyResult<(String, Vec<String>)> {
    let analyzer = settings.analyzer()?;
    py.detach(|| {
        let report = analyzer.summary(&paths).map_err(to_py)?;
        let warnings = report.analysis.warnings();
        let mut json = Vec::new();
        report
            .summary
            .write_json(&mut json, &report.analysis, &report.top_sockets)
            .map_err(|e| Error::new_err(e.to_string()))?;
        Ok((String::from_utf8(json).map_err(|e| Error::new_err(e.to_string()))?, warnings))
    })
}

/// Zeek's conn_state of a TCP connection from its endpoints' states (`inactive`, `syn_sent`,
/// `syn_ack_sent`, `partial`, `established`, `closed`, `reset`), payload sizes and history; of a
/// UDP one (`tcp=False`) from whether each side sent anything (`active` or `inactive`).
#[pyfunction]
fn conn_state(
    tcp: bool,
    orig: &str,
    resp: &str,
    orig_size: u64,
    resp_size: u64,
    history: &str,
) -> PyResult<&'static str> {
    if !tcp {
        let active = |s: &str| match s {
            "active" => Ok(true),
            "inactive" => Ok(false),
            _ => Err(PyValueError::new_err(format!("'{s}' is neither 'active' nor 'inactive'"))),
        };
        return Ok(udp_conn_state(active(orig)?, active(resp)?).code());
    }
    let state = |s: &str| {
        Ok(match s {
            "inactive" => State::Inactive,
            "syn_sent" => State::SynSent,
            "syn_ack_sent" => State::SynAckSent,
            "partial" => State::Partial,
            "established" => State::Established,
            "closed" => State::Closed,
            "reset" => State::Reset,
            _ => return Err(PyValueError::new_err(format!("'{s}' is not a TCP endpoint state"))),
        })
    };
    let side = |s: &str, size| Ok::<_, PyErr>(Side { state: state(s)?, size });
    Ok(verdict::conn_state(side(orig, orig_size)?, side(resp, resp_size)?, history).code())
}

/// The schema of the connection tables, as a `pyarrow.Schema`.
#[pyfunction]
fn schema(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    ConnBatches::new().schema().as_ref().to_pyarrow(py)
}

#[pymodule]
fn _sockscope(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("Error", m.py().get_type::<Error>())?;
    m.add("CaptureError", m.py().get_type::<CaptureError>())?;
    m.add_class::<Batches>()?;
    m.add_function(wrap_pyfunction!(batches, m)?)?;
    m.add_function(wrap_pyfunction!(sockets, m)?)?;
    m.add_function(wrap_pyfunction!(summary, m)?)?;
    m.add_function(wrap_pyfunction!(schema, m)?)?;
    m.add_function(wrap_pyfunction!(conn_state, m)?)?;
    Ok(())
}
