//! The book's weight files: Python pickles of a `dict` of numpy arrays, read without running
//! anything, and written so that the book's own code loads them.
//!
//! The book saves its nets with `pickle.dump(params, f)` (`ch03/sample_weight.pkl`,
//! `ch07/params.pkl`, `ch08/deep_convnet_params.pkl`): a dict from parameter name to numpy
//! array. A pickle is a program for a small stack machine, and a general unpickler runs
//! whatever callables it names. This one is restricted, like PyTorch's `weights_only`
//! loading: it understands the opcodes of protocols 2–5 that such a dict needs, and only
//! these globals, each interpreted here rather than called:
//!
//! | global | what it builds |
//! |---|---|
//! | `numpy.core.multiarray._reconstruct` (numpy 2: `numpy._core…`) with `numpy.ndarray` | an empty array, filled by `BUILD (version, shape, dtype, fortran, bytes)` |
//! | `numpy.core.numeric._frombuffer` (numpy 2: `numpy._core…`) | an array from `(bytes, dtype, shape, order)`, protocol 5 |
//! | `numpy.dtype` | `float32` or `float64`, its byte order set by `BUILD` |
//! | `collections.OrderedDict` | a dict |
//! | `_codecs.encode`, `builtins.bytes` | bytes from `(text, "latin1")`, and empty bytes from `()`: how protocol 2 stores bytes |
//!
//! Any other global is refused with its name. (Written here rather than on `serde-pickle`,
//! which maps Python's built-in types only: an array would come back as its `BUILD` state
//! with the dtype's type code lost, and it cannot refuse a global by name.) Arrays may be float32 or float64, little- or
//! big-endian, in C or Fortran order. Every size the file claims is checked against the bytes
//! that are really there before anything is allocated; memo slots are kept in a map; the
//! stack, the memo, an array's dimensions and the number of arrays are capped well above what
//! numpy writes; and everything built (arrays, container items, copies under several names) is
//! charged to a budget of a few times the file's size. So a small file cannot make the reader
//! allocate much more than its own size, loop over much more than its own bytes, or nest values
//! deep enough to overflow the stack.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;
use std::rc::Rc;

use ndarray::{ArrayD, ArrayViewD, IxDyn, ShapeBuilder};

use super::TensorFile;
use crate::error::{Error, Result};
use crate::net::Sequential;

/// Whether the file at `path` with `bytes` is to be read as a pickle: it starts like one of
/// protocol 2 or later, or its name ends in `.pkl` or `.pickle`.
pub fn looks_like_pickle(path: &Path, bytes: &[u8]) -> bool {
    matches!(bytes, [0x80, 2..=5, ..])
        || path
            .extension()
            .is_some_and(|e| e == "pkl" || e == "pickle")
}

/// Reads the tensors of a pickled dict of numpy arrays; `path` names the file in errors.
/// The result has no metadata: pickles carry none.
///
/// # Errors
/// When the bytes are not such a pickle: an opcode or a global outside the allow-list, a
/// truncated file, an array of another dtype, a value that is not an array.
pub fn parse(bytes: &[u8], path: &Path) -> Result<TensorFile> {
    let invalid =
        |what: String| Error::model(path, format!("not a pickle of numpy arrays: {what}"));
    let (top, mut budget) = Machine::new(bytes).run().map_err(&invalid)?;
    let Value::Dict(items) = top else {
        return Err(invalid(format!("it holds {}, not a dict", top.kind())));
    };
    let items = items.borrow();
    // A key given twice keeps its last value, as in Python: find each key's last item first.
    let mut last: HashMap<&str, usize> = HashMap::new();
    for (k, (key, _)) in items.iter().enumerate() {
        let Value::Str(name) = key else {
            return Err(invalid(format!("a key is {}, not a string", key.kind())));
        };
        if last.insert(name, k).is_none() && last.len() > super::MAX_TENSORS {
            return Err(invalid(format!(
                "it holds more than {} arrays; no net of this crate has as many",
                super::MAX_TENSORS
            )));
        }
    }
    let mut tensors: Vec<(String, ArrayD<f64>)> = Vec::with_capacity(last.len());
    for (k, (key, value)) in items.iter().enumerate() {
        let Value::Str(name) = key else { continue };
        if last.get(name.as_ref()) != Some(&k) {
            continue;
        }
        let Value::Array(array) = value else {
            return Err(invalid(format!(
                "{name} is {}, not a numpy array",
                value.kind()
            )));
        };
        let array = array.borrow();
        let Some(array) = array.as_ref() else {
            return Err(invalid(format!("{name} is an array never filled in")));
        };
        // One array stored under many names is copied for each: that counts too.
        budget.spend(8 * array.len()).map_err(&invalid)?;
        tensors.push((name.to_string(), array.clone()));
    }
    tensors.sort_by_key(|(name, _)| super::tensors::natural_key(name));
    Ok(TensorFile {
        tensors,
        metadata: HashMap::new(),
    })
}

/// A pickle (protocol 4) of the dict `{name: float32 array}`, as numpy writes one: Python's
/// `pickle.load` gives back the same arrays, under numpy 1 and 2.
pub fn encode(tensors: &[(String, ArrayViewD<'_, f32>)]) -> Vec<u8> {
    let mut out = vec![0x80, 4, b'}', b'('];
    // Sizes past 32 bits take the 64-bit forms of protocol 4 (BINUNICODE8, BINBYTES8, LONG1).
    let sized = |out: &mut Vec<u8>, short: u8, long: u8, bytes: &[u8]| {
        match u32::try_from(bytes.len()) {
            Ok(n) => {
                out.push(short);
                out.extend(n.to_le_bytes());
            }
            Err(_) => {
                out.push(long);
                out.extend((bytes.len() as u64).to_le_bytes());
            }
        }
        out.extend(bytes);
    };
    let text = |out: &mut Vec<u8>, s: &str| sized(out, b'X', 0x8d, s.as_bytes());
    let int = |out: &mut Vec<u8>, v: i64| match i32::try_from(v) {
        Ok(v) => {
            out.push(b'J');
            out.extend(v.to_le_bytes());
        }
        Err(_) => {
            out.extend([0x8a, 8]);
            out.extend(v.to_le_bytes());
        }
    };
    for (name, array) in tensors {
        text(&mut out, name);
        out.extend(b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n");
        out.extend(b"K\x00\x85C\x01b\x87R("); // (0,), b'b' → REDUCE; state tuple follows
        out.extend(b"K\x01(");
        for &dim in array.shape() {
            int(&mut out, i64::try_from(dim).unwrap_or(i64::MAX));
        }
        out.extend(b"tcnumpy\ndtype\n");
        text(&mut out, "f4");
        out.extend(b"\x89\x88\x87R(K\x03");
        text(&mut out, "<");
        out.extend(b"NNN");
        int(&mut out, -1);
        int(&mut out, -1);
        out.extend(b"K\x00tb\x89"); // dtype BUILD; not Fortran
        let data: Vec<u8> = array.iter().flat_map(|v| v.to_le_bytes()).collect();
        sized(&mut out, b'B', 0x8e, &data);
        out.extend(b"tb"); // array state tuple, BUILD
    }
    out.extend(b"u."); // SETITEMS, STOP
    out
}

/// Saves the parameters and buffers of `net` (`W1`, `b1`, …) as the book saves its nets
/// (`pickle.dump(params, f)`), atomically: the file the book's `load_params` reads.
///
/// # Errors
/// When the file cannot be written; an existing file at `path` is then untouched.
pub fn save_net(path: &Path, net: &mut Sequential<f32>) -> Result<()> {
    let params = super::named_params(net);
    let views: Vec<_> = params.iter().map(|(n, a)| (n.clone(), a.view())).collect();
    super::write_atomically(path, &encode(&views))
}

/// The globals the reader knows, each interpreted, never called.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Global {
    Reconstruct,
    NdarrayType,
    FromBuffer,
    DtypeType,
    OrderedDict,
    Encode,
    Bytes,
}

impl Global {
    fn find(module: &str, name: &str) -> Option<Global> {
        // numpy 1 names its core `numpy.core`, numpy 2 `numpy._core`.
        let core = |m: &str, sub: &str| {
            ["numpy.core.", "numpy._core."]
                .iter()
                .any(|prefix| m.strip_prefix(prefix) == Some(sub))
        };
        Some(match (module, name) {
            (m, "_reconstruct") if core(m, "multiarray") => Global::Reconstruct,
            (m, "_frombuffer") if core(m, "numeric") => Global::FromBuffer,
            ("numpy", "ndarray") => Global::NdarrayType,
            ("numpy", "dtype") => Global::DtypeType,
            ("collections", "OrderedDict") => Global::OrderedDict,
            ("_codecs", "encode") => Global::Encode,
            ("__builtin__" | "builtins", "bytes") => Global::Bytes,
            _ => return None,
        })
    }
}

/// A numpy dtype the reader accepts: float32 or float64 in a byte order.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Dtype {
    bytes: usize,
    big_endian: bool,
}

/// A value shared by the stack and the memo, changed in place (`SETITEMS`, `BUILD`).
type Shared<T> = Rc<RefCell<T>>;

/// A dict's items, in insertion order.
type Items = Shared<Vec<(Value, Value)>>;

/// What the stack machine holds. Dicts, lists and arrays are shared (`Rc`) so that the memo
/// and the stack refer to one value, as in Python, without copies.
#[derive(Debug, Clone)]
enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float,
    Str(Rc<str>),
    Bytes(Rc<[u8]>),
    /// Its items, and how deep it nests tuples.
    Tuple(Rc<[Value]>, usize),
    List(Shared<Vec<Value>>),
    Dict(Items),
    Global(Global),
    Dtype(Shared<Dtype>),
    /// An array: empty after `_reconstruct`, filled by `BUILD`.
    Array(Shared<Option<ArrayD<f64>>>),
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "a bool",
            Value::Int(_) => "an int",
            Value::Float => "a float",
            Value::Str(_) => "a string",
            Value::Bytes(_) => "bytes",
            Value::Tuple(..) => "a tuple",
            Value::List(_) => "a list",
            Value::Dict(_) => "a dict",
            Value::Global(_) => "a class or function",
            Value::Dtype(_) => "a dtype",
            Value::Array(_) => "an array",
        }
    }
}

/// The most values the stack may hold: numpy's pickles of a dict need about 2,000 (Python
/// writes `SETITEMS` in batches of 1,000).
const MAX_STACK: usize = 1 << 16;

/// The most memo slots: numpy's pickles store about 40 per array.
const MAX_MEMO: usize = 1 << 18;

/// The most dimensions of an array, as in numpy.
const MAX_DIMS: usize = 64;

/// What a pickle may make the reader build (decoded arrays, bytes from text, the items of
/// its lists, dicts and tuples, arrays copied out under their names): a few times its own
/// size, so that one stored value used again and again from the memo cannot take all memory.
struct Budget {
    left: usize,
}

impl Budget {
    fn for_input(len: usize) -> Self {
        Budget {
            left: len.saturating_mul(8).saturating_add(1 << 20),
        }
    }

    fn spend(&mut self, bytes: usize) -> Step<()> {
        self.left = self.left.checked_sub(bytes).ok_or(
            "it builds far more data than it holds (one stored array used again and again?)",
        )?;
        Ok(())
    }
}

/// The unpickler's state: the input, the stack, the marks and the memo.
struct Machine<'a> {
    input: &'a [u8],
    budget: Budget,
    at: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
}

type Step<T> = std::result::Result<T, String>;

/// A family of opcodes: runs `op` (read at byte `at`) and says `true`, or says `false` when
/// `op` is not one of its own.
type Family<'a> = fn(&mut Machine<'a>, u8, usize) -> Step<bool>;

impl<'a> Machine<'a> {
    fn new(input: &'a [u8]) -> Self {
        Machine {
            input,
            budget: Budget::for_input(input.len()),
            at: 0,
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
        }
    }

    /// `n` bytes of input, checked to be there before anything is made of them.
    fn take(&mut self, n: u64, what: &str) -> Step<&'a [u8]> {
        let left = self.input.len() - self.at;
        match usize::try_from(n) {
            Ok(n) if n <= left => {
                let bytes = &self.input[self.at..self.at + n];
                self.at += n;
                Ok(bytes)
            }
            _ => Err(format!(
                "{what} at byte {} claims {n} bytes but {left} are left (a truncated file?)",
                self.at
            )),
        }
    }

    fn u8(&mut self) -> Step<u8> {
        Ok(self.take(1, "an argument")?[0])
    }

    fn le<const N: usize>(&mut self) -> Step<[u8; N]> {
        let bytes = self.take(N as u64, "an argument")?;
        let mut out = [0; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    fn u32(&mut self) -> Step<u32> {
        Ok(u32::from_le_bytes(self.le()?))
    }

    fn u64(&mut self) -> Step<u64> {
        Ok(u64::from_le_bytes(self.le()?))
    }

    fn line(&mut self) -> Step<&'a str> {
        let rest = &self.input[self.at..];
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or("a GLOBAL without its end of line")?;
        let text = std::str::from_utf8(&rest[..end]).map_err(|_| "a GLOBAL that is not text")?;
        self.at += end + 1;
        Ok(text)
    }

    fn text(&mut self, n: u64) -> Step<Value> {
        let bytes = self.take(n, "a string")?;
        let text = std::str::from_utf8(bytes).map_err(|_| "a string that is not UTF-8")?;
        Ok(Value::Str(text.into()))
    }

    fn bytes(&mut self, n: u64) -> Step<Value> {
        Ok(Value::Bytes(self.take(n, "a bytes object")?.into()))
    }

    fn pop(&mut self) -> Step<Value> {
        if self.marks.last().is_some_and(|&m| m >= self.stack.len()) {
            return Err(format!("byte {}: a value taken from past a MARK", self.at));
        }
        self.stack
            .pop()
            .ok_or_else(|| format!("byte {}: the stack is empty", self.at))
    }

    fn top(&self) -> Step<&Value> {
        let floor = self.marks.last().copied().unwrap_or(0);
        self.stack[floor..]
            .last()
            .ok_or_else(|| format!("byte {}: the stack is empty", self.at))
    }

    /// The values pushed since the last MARK, which is removed.
    fn since_mark(&mut self) -> Step<Vec<Value>> {
        let mark = self
            .marks
            .pop()
            .ok_or_else(|| format!("byte {}: no MARK to take values from", self.at))?;
        Ok(self.stack.split_off(mark))
    }

    fn push(&mut self, value: Value) -> Step<()> {
        if self.stack.len() >= MAX_STACK {
            return Err(format!(
                "byte {}: more than {MAX_STACK} values on the stack (numpy's pickles need a few thousand)",
                self.at
            ));
        }
        self.stack.push(value);
        Ok(())
    }

    fn memo_put(&mut self, slot: u32) -> Step<()> {
        let value = self.top()?.clone();
        if self.memo.insert(slot, value).is_none() && self.memo.len() > MAX_MEMO {
            return Err(format!(
                "byte {}: more than {MAX_MEMO} memo slots (numpy's pickles store about 40 per array)",
                self.at
            ));
        }
        Ok(())
    }

    /// Charges `n` values moved into a list, dict or tuple to the budget.
    fn grow(&mut self, n: usize) -> Step<()> {
        self.budget
            .spend(n.saturating_mul(std::mem::size_of::<Value>()))
    }

    fn memo_get(&mut self, slot: u32) -> Step<()> {
        let value = self
            .memo
            .get(&slot)
            .cloned()
            .ok_or_else(|| format!("byte {}: memo slot {slot} was never stored", self.at))?;
        self.push(value)?;
        Ok(())
    }

    fn run(mut self) -> Step<(Value, Budget)> {
        match self.input {
            [0x80, 2..=5, ..] => self.at = 2,
            [0x80, p, ..] => return Err(format!("protocol {p}; protocols 2 to 5 are read")),
            _ => {
                return Err(
                    "no protocol header: protocols 0 and 1 are not read; save with protocol 2 or later"
                        .into(),
                );
            }
        }
        loop {
            let at = self.at;
            match self.u8()? {
                b'.' => return Ok((self.pop()?, self.budget)),
                op => self.execute(op, at)?,
            }
        }
    }

    /// Runs opcode `op`, read at byte `at`: each family of opcodes runs it or says it is not
    /// one of its own.
    fn execute(&mut self, op: u8, at: usize) -> Step<()> {
        let families: [Family<'a>; 6] = [
            Self::framing,
            Self::number,
            Self::string,
            Self::container,
            Self::memo_op,
            Self::object,
        ];
        for family in families {
            if family(self, op, at)? {
                return Ok(());
            }
        }
        match op {
            0x97 | 0x98 => Err(format!(
                "an out-of-band buffer at byte {at}: the data is not in the file"
            )),
            other => Err(format!(
                "opcode 0x{other:02x} at byte {at} is not one a dict of numpy arrays needs"
            )),
        }
    }

    /// FRAME, PROTO, MARK, POP, POP_MARK, DUP.
    fn framing(&mut self, op: u8, at: usize) -> Step<bool> {
        match op {
            0x95 => {
                // FRAME: a length hint for buffered reading; the frame must be there.
                let n = self.u64()?;
                if n > (self.input.len() - self.at) as u64 {
                    return Err(format!(
                        "a FRAME at byte {at} runs past the end of the file"
                    ));
                }
            }
            0x80 => return Err(format!("a second PROTO at byte {at}")),
            b'(' => self.marks.push(self.stack.len()),
            b'0' => {
                self.pop()?;
            }
            b'1' => {
                self.since_mark()?;
            }
            b'2' => {
                let value = self.top()?.clone();
                self.push(value)?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// None, booleans and numbers.
    fn number(&mut self, op: u8, at: usize) -> Step<bool> {
        match op {
            b'N' => self.push(Value::None)?,
            0x88 => self.push(Value::Bool(true))?,
            0x89 => self.push(Value::Bool(false))?,
            b'J' => {
                let v = i32::from_le_bytes(self.le()?);
                self.push(Value::Int(i64::from(v)))?;
            }
            b'G' => {
                self.take(8, "a float")?;
                self.push(Value::Float)?;
            }
            b'K' => {
                let v = self.u8()?;
                self.push(Value::Int(i64::from(v)))?;
            }
            b'M' => {
                let v = u16::from_le_bytes(self.le()?);
                self.push(Value::Int(i64::from(v)))?;
            }
            0x8a => {
                // LONG1: a little-endian two's-complement integer of n bytes.
                let n = self.u8()?;
                let bytes = self.take(u64::from(n), "a LONG1")?;
                if n > 8 {
                    return Err(format!("an integer of {n} bytes at byte {at}"));
                }
                let mut v: i64 = 0;
                for (i, &b) in bytes.iter().enumerate() {
                    v |= i64::from(b) << (8 * i);
                }
                if (1..8).contains(&n) && bytes[usize::from(n) - 1] & 0x80 != 0 {
                    v -= 1i64 << (8 * n);
                }
                self.push(Value::Int(v))?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Text and bytes.
    fn string(&mut self, op: u8, _at: usize) -> Step<bool> {
        match op {
            0x8c => {
                let n = self.u8()?;
                let v = self.text(u64::from(n))?;
                self.push(v)?;
            }
            b'X' => {
                let n = self.u32()?;
                let v = self.text(u64::from(n))?;
                self.push(v)?;
            }
            0x8d => {
                let n = self.u64()?;
                let v = self.text(n)?;
                self.push(v)?;
            }
            b'C' => {
                let n = self.u8()?;
                let v = self.bytes(u64::from(n))?;
                self.push(v)?;
            }
            b'B' => {
                let n = self.u32()?;
                let v = self.bytes(u64::from(n))?;
                self.push(v)?;
            }
            0x8e | 0x96 => {
                // BINBYTES8, BYTEARRAY8
                let n = self.u64()?;
                let v = self.bytes(n)?;
                self.push(v)?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Tuples, lists and dicts.
    fn container(&mut self, op: u8, at: usize) -> Step<bool> {
        match op {
            b')' => self.push(Value::Tuple(Rc::new([]), 1))?,
            0x85..=0x87 => {
                let n = usize::from(op - 0x84);
                self.grow(n)?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.pop()?);
                }
                items.reverse();
                self.push(tuple_of(items)?)?;
            }
            b't' => {
                let items = self.since_mark()?;
                self.grow(items.len())?;
                self.push(tuple_of(items)?)?;
            }
            b']' => self.push(Value::List(Rc::default()))?,
            b'l' => {
                let items = self.since_mark()?;
                self.grow(items.len())?;
                items.iter().try_for_each(|v| may_hold("a list", v))?;
                self.push(Value::List(Rc::new(RefCell::new(items))))?;
            }
            b'a' => {
                self.grow(1)?;
                let item = self.pop()?;
                may_hold("a list", &item)?;
                self.list_top()?.borrow_mut().push(item);
            }
            b'e' => {
                let items = self.since_mark()?;
                self.grow(items.len())?;
                items.iter().try_for_each(|v| may_hold("a list", v))?;
                self.list_top()?.borrow_mut().extend(items);
            }
            b'}' => self.push(Value::Dict(Rc::default()))?,
            b'd' => {
                let items = pairs(self.since_mark()?, at)?;
                self.grow(2 * items.len())?;
                items.iter().try_for_each(in_dict)?;
                self.push(Value::Dict(Rc::new(RefCell::new(items))))?;
            }
            b's' => {
                self.grow(2)?;
                let value = self.pop()?;
                let key = self.pop()?;
                in_dict(&(key.clone(), value.clone()))?;
                self.dict_top()?.borrow_mut().push((key, value));
            }
            b'u' => {
                let items = pairs(self.since_mark()?, at)?;
                self.grow(2 * items.len())?;
                items.iter().try_for_each(in_dict)?;
                self.dict_top()?.borrow_mut().extend(items);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The memo: PUT and GET.
    fn memo_op(&mut self, op: u8, _at: usize) -> Step<bool> {
        match op {
            b'q' => {
                let slot = self.u8()?;
                self.memo_put(u32::from(slot))?;
            }
            b'r' => {
                let slot = self.u32()?;
                self.memo_put(slot)?;
            }
            0x94 => {
                let slot = u32::try_from(self.memo.len()).map_err(|_| "too many memo slots")?;
                self.memo_put(slot)?;
            }
            b'h' => {
                let slot = self.u8()?;
                self.memo_get(u32::from(slot))?;
            }
            b'j' => {
                let slot = self.u32()?;
                self.memo_get(slot)?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Globals, calls (REDUCE) and BUILD.
    fn object(&mut self, op: u8, at: usize) -> Step<bool> {
        match op {
            b'c' => {
                let module = self.line()?;
                let name = self.line()?;
                let global = allowed(module, name)?;
                self.push(Value::Global(global))?;
            }
            0x93 => {
                let name = self.pop()?;
                let module = self.pop()?;
                let (Value::Str(module), Value::Str(name)) = (module, name) else {
                    return Err(format!("a STACK_GLOBAL at byte {at} without two strings"));
                };
                let global = allowed(&module, &name)?;
                self.push(Value::Global(global))?;
            }
            b'R' => {
                let args = self.pop()?;
                let callable = self.pop()?;
                let value = reduce(callable, args, &mut self.budget)
                    .map_err(|e| format!("byte {at}: {e}"))?;
                self.push(value)?;
            }
            b'b' => {
                let state = self.pop()?;
                let target = self.top()?.clone();
                build(&target, state, &mut self.budget).map_err(|e| format!("byte {at}: {e}"))?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn list_top(&self) -> Step<Shared<Vec<Value>>> {
        match self.top()? {
            Value::List(items) => Ok(Rc::clone(items)),
            other => Err(format!("byte {}: APPEND to {}", self.at, other.kind())),
        }
    }

    fn dict_top(&self) -> Step<Items> {
        match self.top()? {
            Value::Dict(items) => Ok(Rc::clone(items)),
            other => Err(format!("byte {}: SETITEM on {}", self.at, other.kind())),
        }
    }
}

/// The global `module.name`, if it is allowed.
fn allowed(module: &str, name: &str) -> Step<Global> {
    Global::find(module, name).ok_or_else(|| {
        format!(
            "it names the global {module}.{name}, which is refused: only numpy arrays in a dict are read, \
             and unpickling it could run any code"
        )
    })
}

/// The deepest nesting of tuples read: numpy's pickles nest them 2 deep.
const MAX_TUPLE_DEPTH: usize = 8;

/// How deep `value` nests tuples (0 for anything else).
fn tuple_depth(value: &Value) -> usize {
    match value {
        Value::Tuple(_, depth) => *depth,
        _ => 0,
    }
}

/// A tuple of `items`, which may hold neither lists nor dicts, nested at most
/// [`MAX_TUPLE_DEPTH`] deep. Together with [`may_hold`] and [`in_dict`] this bounds how deep
/// any value nests (a dict, a list, tuples), so no value is deep enough to overflow the stack
/// when it is dropped, and none can contain itself.
fn tuple_of(items: Vec<Value>) -> Step<Value> {
    items.iter().try_for_each(|v| may_hold("a tuple", v))?;
    let depth = 1 + items.iter().map(tuple_depth).max().unwrap_or(0);
    if depth > MAX_TUPLE_DEPTH {
        return Err(format!(
            "tuples nested {depth} deep; numpy's pickles nest them 2 deep"
        ));
    }
    Ok(Value::Tuple(items.into(), depth))
}

/// Refuses a list or dict inside `container` (a tuple or a list), which numpy's pickles of
/// arrays never need.
fn may_hold(container: &str, item: &Value) -> Step<()> {
    match item {
        Value::List(_) | Value::Dict(_) => Err(format!("{} inside {container}", item.kind())),
        _ => Ok(()),
    }
}

/// Refuses a dict inside a dict (a list of plain values may be one, to be named as such).
fn in_dict((key, value): &(Value, Value)) -> Step<()> {
    match (key, value) {
        (Value::Dict(_) | Value::List(_), _) | (_, Value::Dict(_)) => {
            Err("a dict inside a dict, or a list as a key".into())
        }
        _ => Ok(()),
    }
}

/// Key-value pairs from a flat list of keys and values.
fn pairs(items: Vec<Value>, at: usize) -> Step<Vec<(Value, Value)>> {
    if items.len() % 2 != 0 {
        return Err(format!("byte {at}: a key without a value"));
    }
    let mut items = items.into_iter();
    let mut out = Vec::with_capacity(items.len() / 2);
    while let (Some(key), Some(value)) = (items.next(), items.next()) {
        out.push((key, value));
    }
    Ok(out)
}

/// The tuple items of `args`.
fn tuple(args: &Value) -> Step<&[Value]> {
    match args {
        Value::Tuple(items, _) => Ok(items),
        other => Err(format!("arguments are {}, not a tuple", other.kind())),
    }
}

/// What calling `callable(*args)` would give, for the allowed globals.
fn reduce(callable: Value, args: Value, budget: &mut Budget) -> Step<Value> {
    let Value::Global(global) = callable else {
        return Err(format!("a REDUCE of {}", callable.kind()));
    };
    let args = tuple(&args)?;
    match (global, args) {
        (Global::Reconstruct, [Value::Global(Global::NdarrayType), Value::Tuple(..), _]) => {
            Ok(Value::Array(Rc::default()))
        }
        (Global::DtypeType, [Value::Str(code), ..]) => {
            let dtype = dtype_of(code)?;
            Ok(Value::Dtype(Rc::new(RefCell::new(dtype))))
        }
        (Global::OrderedDict, []) => Ok(Value::Dict(Rc::default())),
        // Protocol 2's empty bytes: `bytes()`.
        (Global::Bytes, []) => Ok(Value::Bytes(Rc::new([]))),
        (Global::Encode, [Value::Str(text), Value::Str(codec)])
            if matches!(codec.as_ref(), "latin1" | "latin-1") =>
        {
            budget.spend(text.len())?;
            let bytes: Option<Vec<u8>> = text.chars().map(|c| u8::try_from(c).ok()).collect();
            let bytes = bytes.ok_or("_codecs.encode of text beyond latin-1")?;
            Ok(Value::Bytes(bytes.into()))
        }
        (
            Global::FromBuffer,
            [
                Value::Bytes(data),
                Value::Dtype(dtype),
                shape,
                Value::Str(order),
            ],
        ) => {
            let fortran = match order.as_ref() {
                "C" => false,
                "F" => true,
                other => return Err(format!("array order {other:?}")),
            };
            let array = array_from(data, *dtype.borrow(), shape, fortran, budget)?;
            Ok(Value::Array(Rc::new(RefCell::new(Some(array)))))
        }
        (global, _) => Err(format!("{global:?} called with arguments it does not take")),
    }
}

/// Applies a `BUILD` state to `target`: a dtype's byte order or an array's contents.
fn build(target: &Value, state: Value, budget: &mut Budget) -> Step<()> {
    let state = tuple(&state)?;
    match target {
        Value::Dtype(dtype) => {
            let Some(Value::Str(order)) = state.get(1) else {
                return Err("a dtype state without its byte order".into());
            };
            dtype.borrow_mut().big_endian = match order.as_ref() {
                "<" | "|" => false,
                ">" => true,
                other => return Err(format!("byte order {other:?}")),
            };
            Ok(())
        }
        Value::Array(cell) => {
            let [
                Value::Int(1),
                shape,
                Value::Dtype(dtype),
                Value::Bool(fortran),
                data,
            ] = state
            else {
                return Err("an array state that is not (1, shape, dtype, fortran, bytes)".into());
            };
            let Value::Bytes(data) = data else {
                return Err(format!(
                    "array data is {}: an object array, which is not read",
                    data.kind()
                ));
            };
            let array = array_from(data, *dtype.borrow(), shape, *fortran, budget)?;
            *cell.borrow_mut() = Some(array);
            Ok(())
        }
        other => Err(format!("a BUILD of {}", other.kind())),
    }
}

/// The dtype of a numpy type code (`f4`, `<f8`, …).
fn dtype_of(code: &str) -> Step<Dtype> {
    let (big_endian, kind) = match code.as_bytes() {
        [b'>', rest @ ..] => (true, rest),
        [b'<' | b'=' | b'|', rest @ ..] => (false, rest),
        rest => (false, rest),
    };
    match kind {
        b"f4" => Ok(Dtype {
            bytes: 4,
            big_endian,
        }),
        b"f8" => Ok(Dtype {
            bytes: 8,
            big_endian,
        }),
        _ => Err(format!(
            "an array of dtype {code}; float32 (f4) and float64 (f8) are read"
        )),
    }
}

/// An `f64` array of `shape` from the raw `data` of `dtype`, stored in C or Fortran order;
/// the byte count is checked against the shape before anything is allocated.
fn array_from(
    data: &[u8],
    dtype: Dtype,
    shape: &Value,
    fortran: bool,
    budget: &mut Budget,
) -> Step<ArrayD<f64>> {
    let shape = tuple(shape)?;
    if shape.len() > MAX_DIMS {
        return Err(format!(
            "an array of {} dimensions; numpy's have at most {MAX_DIMS}",
            shape.len()
        ));
    }
    let dims: Vec<usize> = shape
        .iter()
        .map(|d| match d {
            Value::Int(n) => usize::try_from(*n).map_err(|_| format!("a dimension of {n}")),
            other => Err(format!("a dimension that is {}", other.kind())),
        })
        .collect::<Step<_>>()?;
    let count = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .and_then(|n| n.checked_mul(dtype.bytes));
    if count != Some(data.len()) {
        return Err(format!(
            "an array of shape {dims:?} with {} bytes of data (expected {} per value)",
            data.len(),
            dtype.bytes
        ));
    }
    budget.spend(data.len() / dtype.bytes * 8)?;
    let values: Vec<f64> = match (dtype.bytes, dtype.big_endian) {
        (4, big) => data
            .chunks_exact(4)
            .map(|c| {
                let b = [c[0], c[1], c[2], c[3]];
                f64::from(if big {
                    f32::from_be_bytes(b)
                } else {
                    f32::from_le_bytes(b)
                })
            })
            .collect(),
        (_, big) => data
            .chunks_exact(8)
            .map(|c| {
                let b = [c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]];
                if big {
                    f64::from_be_bytes(b)
                } else {
                    f64::from_le_bytes(b)
                }
            })
            .collect(),
    };
    let shape = IxDyn(&dims);
    let array = if fortran {
        ArrayD::from_shape_vec(shape.f(), values).map(|a| a.as_standard_layout().into_owned())
    } else {
        ArrayD::from_shape_vec(shape, values)
    };
    array.map_err(|e| format!("an array of shape {dims:?}: {e}"))
}
