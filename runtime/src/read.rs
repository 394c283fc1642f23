//! The JSON reader the models read with.
//!
//! The models are read straight from the body's text by this reader rather
//! than through serde's `Deserializer`: every model's reading code is then
//! one plain function, compiled once (not once per deserializer), with no
//! visitor between the bytes and the field they fill. It accepts exactly
//! what `serde_json` accepts (RFC 8259, nesting up to 127 levels, numbers
//! that fit an `f64`) and one thing more: a lone UTF-16 surrogate escape
//! (`"hi \ud83d"`, which RFC 8259's grammar allows and JavaScript's
//! `JSON.stringify` writes for a string cut inside a pair) is read as U+FFFD,
//! so that such a delivery is handled rather than refused; and the values it keeps raw (unknown keys, values of
//! another type than the model's) are the very `Value`s `serde_json` would
//! build: numbers go through `serde_json`'s own number parsing, and a
//! repeated key keeps its last value.

use std::borrow::Cow;
use std::fmt;

use serde_json::{Number, Value};

use crate::DateTime;

/// How deep objects and arrays may nest, as in `serde_json`: the 128th level
/// is refused.
const MAX_DEPTH: u32 = 128;

/// Why the body is not valid JSON, and where.
pub struct ReadError(Box<ErrorAt>);

struct ErrorAt {
    /// Byte offset into the text.
    pos: usize,
    message: Cow<'static, str>,
}

impl ReadError {
    fn new(pos: usize, message: impl Into<Cow<'static, str>>) -> Self {
        ReadError(Box::new(ErrorAt {
            pos,
            message: message.into(),
        }))
    }

    /// What was wrong.
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// The 1-based line and column (in bytes) of the error in `text`.
    pub fn line_column(&self, text: &[u8]) -> (usize, usize) {
        line_column(text, self.0.pos)
    }

    /// The JSON Pointer of the value the error is in ([`pointer_at`]).
    pub(crate) fn pointer(&self, text: &[u8]) -> String {
        pointer_at(text, self.0.pos)
    }

    /// The error as parsing reports it, for the text it was read from.
    pub(crate) fn into_parse_error(self, text: &[u8]) -> crate::ParseError {
        let (line, column) = self.line_column(text);
        crate::ParseError::InvalidJson {
            line,
            column,
            pointer: self.pointer(text),
            message: self.0.message.into_owned(),
        }
    }
}

/// The JSON Pointer of the innermost value that byte offset `pos` of `text`
/// is in: the member or element being read, or else the object or array
/// between them; `""` at the top level. Used for errors only: it reads the
/// text before `pos` again, which was well-formed up to there.
pub(crate) fn pointer_at(text: &[u8], pos: usize) -> String {
    /// An object or array being read, with the key or index of the member
    /// or element being read or expected next (`None` once it is complete:
    /// a comma or the end should follow).
    enum Frame {
        Object(Option<String>),
        Array(Option<usize>, usize),
    }
    /// The member or element in progress is complete.
    fn done(stack: &mut [Frame]) {
        match stack.last_mut() {
            Some(Frame::Object(key)) => *key = None,
            Some(Frame::Array(current, _)) => *current = None,
            None => {}
        }
    }
    // At the end of the text, what was read last is what was cut: the
    // white space after it (a body's last newline) changes nothing.
    let at_end = pos >= text.len();
    let end = if at_end {
        text.len()
            - text
                .iter()
                .rev()
                .take_while(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
                .count()
    } else {
        pos
    };
    let mut stack: Vec<Frame> = Vec::new();
    // In an object, whether the next string is a key; whether a number or
    // literal is being read.
    let (mut expect_key, mut scalar) = (false, false);
    let mut scalar_start = 0;
    let mut i = 0;
    while i < end {
        let b = text[i];
        if scalar && !b.is_ascii_alphanumeric() && !matches!(b, b'.' | b'-' | b'+') {
            scalar = false;
            done(&mut stack);
        }
        match b {
            b'{' | b'[' => {
                stack.push(if b == b'{' {
                    Frame::Object(None)
                } else {
                    Frame::Array(Some(0), 1)
                });
                expect_key = b == b'{';
            }
            b'}' | b']' => {
                stack.pop();
                done(&mut stack);
                expect_key = false;
            }
            b',' => {
                expect_key = false;
                match stack.last_mut() {
                    Some(Frame::Object(_)) => expect_key = true,
                    Some(Frame::Array(current, next)) => {
                        *current = Some(*next);
                        *next += 1;
                    }
                    None => {}
                }
            }
            b':' => expect_key = false,
            b'"' => {
                let start = i;
                i += 1;
                while i < end && text[i] != b'"' {
                    i += if text[i] == b'\\' { 2 } else { 1 };
                }
                let key = expect_key && matches!(stack.last(), Some(Frame::Object(_)));
                if key && i < end {
                    let raw = &text[start..=i];
                    let name = serde_json::from_slice::<String>(raw).unwrap_or_else(|_| {
                        String::from_utf8_lossy(&raw[1..raw.len() - 1]).into_owned()
                    });
                    if let Some(Frame::Object(k)) = stack.last_mut() {
                        *k = Some(name);
                    }
                    expect_key = false;
                } else if !key && i < end {
                    done(&mut stack);
                }
            }
            b' ' | b'\t' | b'\n' | b'\r' => {}
            _ => {
                if !scalar {
                    scalar_start = i;
                }
                scalar = true;
            }
        }
        i += 1;
    }
    // A number or literal right before `pos`, complete (`[1,2}`, `1.5.5`,
    // `truex`: what is wrong is what follows it, where a `,` or the end
    // belongs): the error is its container's, as it is after a string.
    // One cut short (`tru]`), a number going on with a digit where JSON
    // does not let it (`01`: the number's own error), or one at the end of
    // the text (where it may have been cut) is where the error is.
    if scalar && !at_end {
        let token = &text[scalar_start..end];
        let literal = matches!(token, b"true" | b"false" | b"null");
        let number = !literal && serde_json::from_slice::<serde_json::Number>(token).is_ok();
        if literal || (number && !text[end].is_ascii_digit()) {
            done(&mut stack);
        }
    }
    let mut pointer = String::new();
    for frame in &stack {
        match frame {
            Frame::Object(Some(key)) => {
                pointer.push('/');
                pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
            }
            Frame::Array(Some(index), _) => {
                pointer.push('/');
                pointer.push_str(&index.to_string());
            }
            Frame::Object(None) | Frame::Array(None, _) => break,
        }
    }
    pointer
}

/// The 1-based line and column (in bytes) of byte offset `pos` in `text`.
pub(crate) fn line_column(text: &[u8], pos: usize) -> (usize, usize) {
    let before = &text[..pos.min(text.len())];
    let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
    let start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    (line, before.len() - start + 1)
}

impl fmt::Debug for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReadError({} at byte {})", self.0.message, self.0.pos)
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.0.message, self.0.pos)
    }
}

impl std::error::Error for ReadError {}

/// A position to come back to (see [`Reader::rewind`]).
#[derive(Clone, Copy, Debug)]
pub struct Mark {
    pos: usize,
    depth: u32,
}

impl Mark {
    /// Where in the text it is, in bytes.
    pub(crate) fn offset(&self) -> usize {
        self.pos
    }
}

/// A pull reader over JSON text.
///
/// Objects are read with [`begin_object`](Reader::begin_object) and
/// [`next_key`](Reader::next_key) (each key then has its value read by the
/// caller), arrays with [`begin_array`](Reader::begin_array) and
/// [`next_item`](Reader::next_item). A method reading a value of one type
/// (`string`, `null`, `begin_object`…) leaves a value of another type
/// unread, for [`raw_value`](Reader::raw_value) to keep.
pub struct Reader<'de> {
    text: &'de str,
    pos: usize,
    depth: u32,
    /// An object or array was just opened: no `,` before its first entry.
    opened: bool,
    /// The date-times read last in this text, by their exact text: a
    /// payload repeats its timestamps (`updatedAt` is often `modifiedAt`,
    /// a change's `after` the resource's own value).
    dates: [Option<(&'de str, DateTime)>; DATES],
    /// Where the next date-time read goes in `dates`.
    next_date: usize,
}

/// How many date-times a reader remembers.
const DATES: usize = 8;

impl<'de> Reader<'de> {
    /// A reader at the start of `text`.
    pub fn new(text: &'de str) -> Self {
        Reader {
            text,
            pos: 0,
            depth: 0,
            opened: false,
            dates: Default::default(),
            next_date: 0,
        }
    }

    /// The date-time `text` (a string of this reader's text), if it is one:
    /// [`DateTime::parse`], once for each text among the last few.
    pub fn date_time(&mut self, text: &'de str) -> Option<DateTime> {
        for (seen, date) in self.dates.iter().flatten() {
            if *seen == text {
                return Some(date.clone());
            }
        }
        let date = DateTime::parse(text)?;
        self.dates[self.next_date] = Some((text, date.clone()));
        self.next_date = (self.next_date + 1) % DATES;
        Some(date)
    }

    #[inline]
    fn bytes(&self) -> &'de [u8] {
        self.text.as_bytes()
    }

    #[cold]
    fn error<T>(&self, message: &'static str) -> Result<T, ReadError> {
        Err(ReadError::new(self.pos, message))
    }

    #[inline]
    fn skip_whitespace(&mut self) {
        let bytes = self.bytes();
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    /// The first byte of the next value, whitespace skipped.
    #[inline]
    fn peek_value(&mut self) -> Result<u8, ReadError> {
        self.skip_whitespace();
        match self.bytes().get(self.pos) {
            Some(&b) => Ok(b),
            None => self.error("EOF while parsing a value"),
        }
    }

    /// Where the next value starts, to [`rewind`](Reader::rewind) to.
    #[inline]
    pub fn mark(&mut self) -> Mark {
        self.skip_whitespace();
        Mark {
            pos: self.pos,
            depth: self.depth,
        }
    }

    /// Goes back to `mark`, to read the value there again.
    #[inline]
    pub fn rewind(&mut self, mark: Mark) {
        self.pos = mark.pos;
        self.depth = mark.depth;
        self.opened = false;
    }

    /// After the last value: only whitespace may follow.
    pub fn end(&mut self) -> Result<(), ReadError> {
        self.skip_whitespace();
        if self.pos == self.text.len() {
            Ok(())
        } else {
            self.error("trailing characters")
        }
    }

    fn enter(&mut self) -> Result<(), ReadError> {
        self.depth += 1;
        if self.depth >= MAX_DEPTH {
            return self.error("recursion limit exceeded");
        }
        self.pos += 1;
        self.opened = true;
        Ok(())
    }

    /// The JSON type of the next value, as drift reports name it (`None` if
    /// no value starts there).
    pub fn peek_type(&mut self) -> Result<Option<&'static str>, ReadError> {
        Ok(match self.peek_value()? {
            b'{' => Some("object"),
            b'[' => Some("array"),
            b'"' => Some("string"),
            b'-' | b'0'..=b'9' => Some("number"),
            b't' | b'f' => Some("boolean"),
            b'n' => Some("null"),
            _ => None,
        })
    }

    // -- objects and arrays ------------------------------------------------

    /// Enters the next value if it is an object (`true`); leaves any other
    /// value unread (`false`).
    #[inline]
    pub fn begin_object(&mut self) -> Result<bool, ReadError> {
        self.begin(b'{')
    }

    /// Enters the next value if it opens with `open`.
    #[inline(always)]
    fn begin(&mut self, open: u8) -> Result<bool, ReadError> {
        if self.peek_value()? != open {
            return Ok(false);
        }
        self.enter()?;
        Ok(true)
    }

    /// The next key of the object being read, its `:` read past; `None` at
    /// its end (which is read past).
    #[inline(never)]
    pub fn next_key(&mut self) -> Result<Option<Cow<'de, str>>, ReadError> {
        let bytes = self.bytes();
        if std::mem::take(&mut self.opened) {
            self.skip_whitespace();
        } else {
            // Compact JSON has the `,` right after the value.
            if bytes.get(self.pos) != Some(&b',') {
                self.skip_whitespace();
            }
            match bytes.get(self.pos) {
                Some(b',') => {
                    self.pos += 1;
                    if bytes.get(self.pos) != Some(&b'"') {
                        self.skip_whitespace();
                    }
                    return self.key_and_colon().map(Some);
                }
                Some(b'}') => {}
                Some(_) => return self.error("expected `,` or `}`"),
                None => return self.error("EOF while parsing an object"),
            }
        }
        if bytes.get(self.pos) == Some(&b'}') {
            self.pos += 1;
            self.depth -= 1;
            return Ok(None);
        }
        self.key_and_colon().map(Some)
    }

    /// A key and the `:` after it.
    #[inline(always)]
    fn key_and_colon(&mut self) -> Result<Cow<'de, str>, ReadError> {
        let key = self.key()?;
        if self.bytes().get(self.pos) == Some(&b':') {
            self.pos += 1;
        } else {
            self.colon()?;
        }
        Ok(key)
    }

    #[inline(always)]
    fn key(&mut self) -> Result<Cow<'de, str>, ReadError> {
        if self.bytes().get(self.pos) == Some(&b'"') {
            self.pos += 1;
            return self.read_str();
        }
        self.not_a_key()
    }

    #[cold]
    fn not_a_key<T>(&mut self) -> Result<T, ReadError> {
        match self.bytes().get(self.pos) {
            Some(_) => self.error("key must be a string"),
            None => self.error("EOF while parsing an object"),
        }
    }

    fn colon(&mut self) -> Result<(), ReadError> {
        self.skip_whitespace();
        match self.bytes().get(self.pos) {
            Some(b':') => {
                self.pos += 1;
                Ok(())
            }
            Some(_) => self.error("expected `:`"),
            None => self.error("EOF while parsing an object"),
        }
    }

    /// Enters the next value if it is an array (`true`); leaves any other
    /// value unread (`false`).
    #[inline]
    pub fn begin_array(&mut self) -> Result<bool, ReadError> {
        self.begin(b'[')
    }

    /// Whether the array being read has another item (to be read next);
    /// at its end, reads past it.
    #[inline]
    pub fn next_item(&mut self) -> Result<bool, ReadError> {
        self.skip_whitespace();
        let bytes = self.bytes();
        if std::mem::take(&mut self.opened) {
            if bytes.get(self.pos) == Some(&b']') {
                self.pos += 1;
                self.depth -= 1;
                return Ok(false);
            }
            return Ok(true);
        }
        match bytes.get(self.pos) {
            Some(b',') => {
                self.pos += 1;
                Ok(true)
            }
            Some(b']') => {
                self.pos += 1;
                self.depth -= 1;
                Ok(false)
            }
            Some(_) => self.error("expected `,` or `]`"),
            None => self.error("EOF while parsing a list"),
        }
    }

    // -- scalars -----------------------------------------------------------

    /// Reads the next value if it is a string; leaves any other unread.
    #[inline]
    pub fn string(&mut self) -> Result<Option<Cow<'de, str>>, ReadError> {
        if self.peek_value()? != b'"' {
            return Ok(None);
        }
        self.pos += 1;
        self.read_str().map(Some)
    }

    /// Reads the next value if it is `null` (`true`); leaves any other
    /// unread.
    #[inline]
    pub fn null(&mut self) -> Result<bool, ReadError> {
        if self.peek_value()? != b'n' {
            return Ok(false);
        }
        self.literal("null")?;
        Ok(true)
    }

    /// Reads the next value if it is a boolean; leaves any other unread.
    #[inline]
    pub fn boolean(&mut self) -> Result<Option<bool>, ReadError> {
        match self.peek_value()? {
            b't' => self.literal("true").map(|()| Some(true)),
            b'f' => self.literal("false").map(|()| Some(false)),
            _ => Ok(None),
        }
    }

    /// Reads the next value if it is a number; leaves any other unread.
    #[inline]
    pub fn number(&mut self) -> Result<Option<Number>, ReadError> {
        if !matches!(self.peek_value()?, b'-' | b'0'..=b'9') {
            return Ok(None);
        }
        let start = self.pos;
        let text = self.number_text()?;
        Ok(Some(self.parse_number(start, text)?))
    }

    /// Reads the next value if it is a number: `Ok(Some(Ok(i)))` for an
    /// integer that fits an `i64`, `Ok(Some(Err(n)))` for another number.
    #[inline]
    pub fn integer(&mut self) -> Result<Option<Result<i64, Number>>, ReadError> {
        if !matches!(self.peek_value()?, b'-' | b'0'..=b'9') {
            return Ok(None);
        }
        let start = self.pos;
        let text = self.number_text()?;
        if let Some(i) = small_integer(text) {
            return Ok(Some(Ok(i)));
        }
        let n = self.parse_number(start, text)?;
        Ok(Some(n.as_i64().ok_or(n)))
    }

    /// The whole next value, as `serde_json` reads it (the same numbers,
    /// the last of repeated keys), in the same single pass as the rest.
    pub fn raw_value(&mut self) -> Result<Value, ReadError> {
        match self.peek_value()? {
            b'n' => self.literal("null").map(|()| Value::Null),
            b't' => self.literal("true").map(|()| Value::Bool(true)),
            b'f' => self.literal("false").map(|()| Value::Bool(false)),
            b'"' => {
                self.pos += 1;
                Ok(Value::String(self.read_str()?.into_owned()))
            }
            b'-' | b'0'..=b'9' => {
                let start = self.pos;
                let text = self.number_text()?;
                Ok(Value::Number(match small_integer(text) {
                    Some(i) => Number::from(i),
                    None => self.parse_number(start, text)?,
                }))
            }
            b'{' => {
                self.enter()?;
                let mut map = serde_json::Map::new();
                while let Some(key) = self.next_key()? {
                    let value = self.raw_value()?;
                    map.insert(key.into_owned(), value);
                }
                Ok(Value::Object(map))
            }
            b'[' => {
                self.enter()?;
                let mut items = Vec::new();
                while self.next_item()? {
                    items.push(self.raw_value()?);
                }
                Ok(Value::Array(items))
            }
            _ => self.error("expected value"),
        }
    }

    /// Reads past the next value, checking it is valid JSON.
    pub fn skip_value(&mut self) -> Result<(), ReadError> {
        let base = self.depth;
        // Bit `i`: the container at level `base + i + 1` is an object.
        let mut objects: u128 = 0;
        'value: loop {
            match self.peek_value()? {
                open @ (b'{' | b'[') => {
                    self.enter()?;
                    self.opened = false;
                    let level = self.depth - base - 1;
                    self.skip_whitespace();
                    if open == b'{' {
                        objects |= 1 << level;
                        match self.bytes().get(self.pos) {
                            Some(b'}') => {
                                self.pos += 1;
                                self.depth -= 1;
                            }
                            _ => {
                                self.key_and_colon()?;
                                continue 'value;
                            }
                        }
                    } else {
                        objects &= !(1 << level);
                        if self.bytes().get(self.pos) == Some(&b']') {
                            self.pos += 1;
                            self.depth -= 1;
                        } else {
                            continue 'value;
                        }
                    }
                }
                b'"' => {
                    self.pos += 1;
                    self.skip_str()?;
                }
                b'-' | b'0'..=b'9' => {
                    let start = self.pos;
                    let text = self.number_text()?;
                    if small_integer(text).is_none() {
                        self.parse_number(start, text)?;
                    }
                }
                b'n' => self.literal("null")?,
                b't' => self.literal("true")?,
                b'f' => self.literal("false")?,
                _ => return self.error("expected value"),
            }
            // After a value: the next one in its container, or the end of
            // containers.
            loop {
                if self.depth == base {
                    return Ok(());
                }
                let object = objects & (1 << (self.depth - base - 1)) != 0;
                self.skip_whitespace();
                match (self.bytes().get(self.pos), object) {
                    (Some(b','), true) => {
                        self.pos += 1;
                        self.skip_whitespace();
                        self.key_and_colon()?;
                        continue 'value;
                    }
                    (Some(b','), false) => {
                        self.pos += 1;
                        continue 'value;
                    }
                    (Some(b'}'), true) | (Some(b']'), false) => {
                        self.pos += 1;
                        self.depth -= 1;
                    }
                    (Some(_), true) => return self.error("expected `,` or `}`"),
                    (Some(_), false) => return self.error("expected `,` or `]`"),
                    (None, true) => return self.error("EOF while parsing an object"),
                    (None, false) => return self.error("EOF while parsing a list"),
                }
            }
        }
    }

    fn literal(&mut self, word: &'static str) -> Result<(), ReadError> {
        let bytes = self.bytes();
        let end = self.pos + word.len();
        if bytes.get(self.pos..end) == Some(word.as_bytes()) {
            self.pos = end;
            return Ok(());
        }
        // Where it stops matching.
        for (i, &w) in word.as_bytes().iter().enumerate() {
            match bytes.get(self.pos + i) {
                Some(&b) if b == w => {}
                Some(_) => {
                    self.pos += i;
                    return self.error("expected ident");
                }
                None => {
                    self.pos += i;
                    return self.error("EOF while parsing a value");
                }
            }
        }
        Ok(())
    }

    /// The text of the number at `pos`, read past, checked against JSON's
    /// grammar: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    fn number_text(&mut self) -> Result<&'de str, ReadError> {
        let bytes = self.bytes();
        let start = self.pos;
        let mut i = start;
        if bytes.get(i) == Some(&b'-') {
            i += 1;
        }
        match bytes.get(i) {
            Some(b'0') => {
                i += 1;
                if bytes.get(i).is_some_and(u8::is_ascii_digit) {
                    return self.bad_number(i);
                }
            }
            Some(b'1'..=b'9') => i = self.digits(i)?,
            _ => return self.bad_number(i),
        }
        if bytes.get(i) == Some(&b'.') {
            i += 1;
            i = self.digits(i)?;
        }
        if let Some(b'e' | b'E') = bytes.get(i) {
            i += 1;
            if let Some(b'+' | b'-') = bytes.get(i) {
                i += 1;
            }
            i = self.digits(i)?;
        }
        self.pos = i;
        Ok(&self.text[start..i])
    }

    /// At least one digit from `i`: where they end.
    fn digits(&mut self, mut i: usize) -> Result<usize, ReadError> {
        let bytes = self.bytes();
        if !bytes.get(i).is_some_and(u8::is_ascii_digit) {
            return self.bad_number(i);
        }
        while bytes.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        Ok(i)
    }

    /// A number that stops being one at `i`: the text ends, or a byte there
    /// does not fit JSON's grammar.
    #[cold]
    fn bad_number<T>(&mut self, i: usize) -> Result<T, ReadError> {
        self.pos = i;
        match self.bytes().get(i) {
            Some(_) => self.error("invalid number"),
            None => self.error("EOF while parsing a value"),
        }
    }

    /// A number's text as `serde_json` reads it (so `-0` is a float, and a
    /// number too large for an `f64` is an error).
    fn parse_number(&self, start: usize, text: &str) -> Result<Number, ReadError> {
        text.parse::<Number>()
            .map_err(|_| ReadError::new(start, "number out of range"))
    }

    /// The rest of a string whose opening quote was read.
    #[inline(always)]
    fn read_str(&mut self) -> Result<Cow<'de, str>, ReadError> {
        let bytes = self.bytes();
        let start = self.pos;
        let end = find_special(bytes, start);
        if bytes.get(end) == Some(&b'"') {
            self.pos = end + 1;
            // Both ends are ASCII quotes, so on character boundaries.
            if let Some(s) = self.text.get(start..end) {
                return Ok(Cow::Borrowed(s));
            }
        }
        self.read_escaped_str(start)
    }

    /// [`read_str`](Reader::read_str) for a string with escapes (or an
    /// error) in it, from `start`, just after its opening quote.
    #[cold]
    #[inline(never)]
    fn read_escaped_str(&mut self, start: usize) -> Result<Cow<'de, str>, ReadError> {
        let mut owned = String::new();
        self.pos = start;
        self.string_with_escapes(Some(&mut owned))?;
        Ok(Cow::Owned(owned))
    }

    /// The rest of a string whose opening quote was read, checked and read
    /// past.
    fn skip_str(&mut self) -> Result<(), ReadError> {
        let bytes = self.bytes();
        let end = find_special(bytes, self.pos);
        if bytes.get(end) == Some(&b'"') {
            self.pos = end + 1;
            Ok(())
        } else {
            self.string_with_escapes(None)
        }
    }

    /// Reads the rest of a string, decoding its escapes into `out`.
    fn string_with_escapes(&mut self, mut out: Option<&mut String>) -> Result<(), ReadError> {
        let bytes = self.bytes();
        loop {
            let start = self.pos;
            let end = find_special(bytes, start);
            if let Some(out) = out.as_deref_mut() {
                out.push_str(&self.text[start..end.min(bytes.len())]);
            }
            self.pos = end;
            match bytes.get(end) {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let c = self.escape()?;
                    if let Some(out) = out.as_deref_mut() {
                        out.push(c);
                    }
                }
                Some(_) => {
                    return self
                        .error("control character (\\u0000-\\u001F) found while parsing a string");
                }
                None => return self.error("EOF while parsing a string"),
            }
        }
    }

    /// One escape, its backslash read.
    fn escape(&mut self) -> Result<char, ReadError> {
        let Some(&b) = self.bytes().get(self.pos) else {
            return self.error("EOF while parsing a string");
        };
        self.pos += 1;
        Ok(match b {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => return self.unicode_escape(),
            _ => {
                self.pos -= 1;
                return self.error("invalid escape");
            }
        })
    }

    /// A `\uXXXX` escape, its `\u` read. A UTF-16 surrogate pair is one
    /// character; a surrogate alone (JSON's grammar allows it, as does
    /// JavaScript's `JSON.stringify` of a string cut inside a pair, but a
    /// Rust string cannot hold it) is read as U+FFFD, the replacement
    /// character, so that such a payload is read rather than refused.
    fn unicode_escape(&mut self) -> Result<char, ReadError> {
        let first = self.hex4()?;
        if !(0xD800..=0xDFFF).contains(&first) {
            // Outside the surrogates, every code unit is a char.
            return char::from_u32(u32::from(first))
                .map_or_else(|| self.error("invalid unicode code point"), Ok);
        }
        let bytes = self.bytes();
        if first <= 0xDBFF && bytes.get(self.pos..self.pos + 2) == Some(&b"\\u"[..]) {
            let after = self.pos;
            self.pos += 2;
            let second = self.hex4()?;
            if (0xDC00..=0xDFFF).contains(&second) {
                let c =
                    ((u32::from(first) - 0xD800) << 10 | (u32::from(second) - 0xDC00)) + 0x1_0000;
                return char::from_u32(c)
                    .map_or_else(|| self.error("invalid unicode code point"), Ok);
            }
            // Not a trailing surrogate: that escape is read on its own.
            self.pos = after;
        }
        Ok(char::REPLACEMENT_CHARACTER)
    }

    fn hex4(&mut self) -> Result<u16, ReadError> {
        let mut n: u16 = 0;
        for _ in 0..4 {
            let Some(&b) = self.bytes().get(self.pos) else {
                return self.error("EOF while parsing a string");
            };
            let digit = match b {
                b'0'..=b'9' => b - b'0',
                b'a'..=b'f' => b - b'a' + 10,
                b'A'..=b'F' => b - b'A' + 10,
                _ => return self.error("invalid escape"),
            };
            n = n << 4 | u16::from(digit);
            self.pos += 1;
        }
        Ok(n)
    }
}

/// The offset of the first `"`, `\` or control character from `i` (the
/// text's length if there is none), sixteen bytes at a time where the
/// processor has SSE2 (every x86-64 does), eight at a time elsewhere.
#[inline]
fn find_special(bytes: &[u8], i: usize) -> usize {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    {
        // SAFETY: the build's target has SSE2 (the `cfg` above).
        match unsafe { find_special_sse2(bytes, i) } {
            Ok(found) => found,
            Err(rest) => find_special_tail(bytes, rest),
        }
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    find_special_tail(bytes, i)
}

/// [`find_special`] eight bytes at a time, then one by one: the whole text
/// where there is no SSE2, else its last fifteen bytes (out of line, so
/// that the common case stays small).
#[cfg_attr(all(target_arch = "x86_64", target_feature = "sse2"), inline(never))]
fn find_special_tail(bytes: &[u8], mut i: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    while let Some(chunk) = bytes.get(i..i + 8) {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        let quote = w ^ (ONES * u64::from(b'"'));
        let backslash = w ^ (ONES * u64::from(b'\\'));
        // A byte is flagged where it is zero (or below 0x20, for the control
        // characters); borrows only flag bytes above the first true one.
        let found = (quote.wrapping_sub(ONES) & !quote
            | backslash.wrapping_sub(ONES) & !backslash
            | w.wrapping_sub(ONES * 0x20) & !w)
            & HIGH;
        if found != 0 {
            return i + (found.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&b) = bytes.get(i) {
        if b == b'"' || b == b'\\' || b < 0x20 {
            return i;
        }
        i += 1;
    }
    bytes.len()
}

/// [`find_special`] sixteen bytes at a time: `Ok` with the offset found,
/// or `Err` with where fewer than sixteen bytes are left.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[target_feature(enable = "sse2")]
#[inline]
fn find_special_sse2(bytes: &[u8], mut i: usize) -> Result<usize, usize> {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_max_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    let quote = _mm_set1_epi8(b'"' as i8);
    let backslash = _mm_set1_epi8(b'\\' as i8);
    let limit = _mm_set1_epi8(0x1f);
    while let Some(chunk) = bytes.get(i..i + 16) {
        // SAFETY: `chunk` is 16 readable bytes, and the load is unaligned.
        let v = unsafe { _mm_loadu_si128(chunk.as_ptr().cast::<__m128i>()) };
        // Unsigned `v <= 0x1f` is `max(v, 0x1f) == 0x1f`.
        let control = _mm_cmpeq_epi8(_mm_max_epu8(v, limit), limit);
        let special = _mm_or_si128(
            _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
            control,
        );
        let found = _mm_movemask_epi8(special);
        if found != 0 {
            return Ok(i + found.trailing_zeros() as usize);
        }
        i += 16;
    }
    Err(i)
}

/// A number's text as an `i64`, when it is a plain integer of at most 18
/// digits (so it fits) other than `-0` (which `serde_json` reads as a float).
#[inline]
fn small_integer(text: &str) -> Option<i64> {
    let (negative, digits) = match text.as_bytes() {
        [b'-', rest @ ..] => (true, rest),
        all => (false, all),
    };
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    let mut n: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n * 10 + i64::from(d - b'0');
    }
    match (negative, n) {
        (true, 0) => None,
        (true, n) => Some(-n),
        (false, n) => Some(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> Result<Value, ReadError> {
        let mut r = Reader::new(text);
        let v = r.raw_value()?;
        r.end()?;
        Ok(v)
    }

    fn skip(text: &str) -> Result<(), ReadError> {
        let mut r = Reader::new(text);
        r.skip_value()?;
        r.end()
    }

    #[test]
    fn reads_what_serde_json_reads() {
        let cases = [
            r#"{"a":[1,-2,3.5,-0,1e3,true,false,null,"x\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"],"b":{}}"#,
            " [ ] ",
            "[[[]],{\"k\":[{}]}]",
            "-0.0e-5",
            "18446744073709551615",
            "18446744073709551616",
            "-9223372036854775808",
            "\"\\u0000\"",
            "{\"a\":1,\"a\":2}",
            "[1.7976931348623157e308,5e-324,0.1,1E+2,-1e-2,123456789012345678901234567890]",
            "[999999999999999999,-999999999999999999,1000000000000000000,-0,0]",
            "{\"k\\u00e9y\":{\"\":[{},[],\"\"]}}",
        ];
        for text in cases {
            let want: Value = serde_json::from_str(text).unwrap();
            assert_eq!(raw(text).unwrap(), want, "{text}");
            skip(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        }
    }

    #[test]
    fn a_lone_surrogate_is_read_as_the_replacement_character() {
        // What `JSON.stringify` writes for a string cut inside a pair:
        // valid JSON, which serde_json refuses.
        for (text, want) in [
            (r#""hi \ud83d""#, "hi \u{FFFD}"),
            (r#""\ude00 tail""#, "\u{FFFD} tail"),
            (r#""\ud800\u0041""#, "\u{FFFD}A"),
            (r#""\ud800\ud83d\ude00""#, "\u{FFFD}\u{1F600}"),
            (r#""\ud83d\ude00""#, "\u{1F600}"),
            (r#""\ud800\n""#, "\u{FFFD}\n"),
        ] {
            assert!(serde_json::from_str::<Value>(text).is_err() || !want.contains('\u{FFFD}'));
            assert_eq!(raw(text).unwrap(), Value::String(want.into()), "{text}");
            skip(text).unwrap();
            let key = format!("{{{text}:1}}");
            let mut r = Reader::new(&key);
            assert!(r.begin_object().unwrap());
            assert_eq!(r.next_key().unwrap().as_deref(), Some(want), "{key}");
        }
        // An escape after a leading surrogate must still be whole.
        for text in [r#""\ud800\u00""#, r#""\ud800\uzzzz""#, r#""\ud800"#] {
            assert!(raw(text).is_err(), "{text}");
        }
    }

    #[test]
    fn refuses_what_serde_json_refuses() {
        let cases = [
            "",
            "{",
            "{\"a\"}",
            "{\"a\":}",
            "{\"a\":1,}",
            "[1,]",
            "[1 2]",
            "{a:1}",
            "01",
            "1.",
            "1e",
            "-",
            "1e400",
            "tru",
            "nul",
            "\"\\x\"",
            "\"a\u{1}\"",
            "\"abc",
            "[1] 2",
            "{\"a\":1}}",
        ];
        for text in cases {
            assert!(serde_json::from_str::<Value>(text).is_err(), "{text}");
            assert!(raw(text).is_err(), "raw accepted {text:?}");
            assert!(skip(text).is_err(), "skip accepted {text:?}");
        }
    }

    #[test]
    fn nesting_is_limited_as_in_serde_json() {
        for depth in [126, 127, 128, 129] {
            let text = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            let theirs = serde_json::from_str::<Value>(&text).is_ok();
            assert_eq!(raw(&text).is_ok(), theirs, "{depth}");
            assert_eq!(skip(&text).is_ok(), theirs, "{depth}");
        }
    }

    #[test]
    fn integers() {
        for (text, want) in [
            ("0", Some(Ok(0))),
            ("-12", Some(Ok(-12))),
            ("9223372036854775807", Some(Ok(i64::MAX))),
            ("-9223372036854775808", Some(Ok(i64::MIN))),
        ] {
            assert_eq!(Reader::new(text).integer().unwrap(), want, "{text}");
        }
        for text in ["-0", "1.5", "9223372036854775808", "1e2"] {
            let got = Reader::new(text).integer().unwrap();
            assert!(matches!(got, Some(Err(_))), "{text}: {got:?}");
        }
        assert_eq!(Reader::new("\"1\"").integer().unwrap(), None);
    }

    #[test]
    fn strings_borrow_unless_escaped() {
        let mut r = Reader::new(r#""plain text here" "a\nb""#);
        assert!(matches!(
            r.string().unwrap(),
            Some(Cow::Borrowed("plain text here"))
        ));
        assert_eq!(r.string().unwrap().as_deref(), Some("a\nb"));
    }

    #[test]
    fn date_times_are_parsed_once_per_text() {
        let text =
            r#"["2021-04-26T21:33:54.763Z","2021-04-26T21:33:54Z","2021-04-26T21:33:54.763Z","x"]"#;
        let mut r = Reader::new(text);
        assert!(r.begin_array().unwrap());
        let mut got = Vec::new();
        while r.next_item().unwrap() {
            let Some(Cow::Borrowed(s)) = r.string().unwrap() else {
                panic!("a plain string")
            };
            got.push(r.date_time(s).map(|d| d.to_string()));
        }
        let want = [
            Some("2021-04-26T21:33:54.763Z"),
            Some("2021-04-26T21:33:54Z"),
            Some("2021-04-26T21:33:54.763Z"),
            None,
        ];
        assert_eq!(got, want.map(|d| d.map(str::to_owned)));
        // More texts than it remembers: each still reads as itself.
        let dates: Vec<String> = (0..12)
            .map(|i| format!("2021-04-{:02}T21:33:54.763Z", i % 6 + 1))
            .collect();
        let text = dates.join(" ");
        let mut r = Reader::new(&text);
        for (i, date) in dates.iter().enumerate() {
            let start = text.find(date.as_str()).unwrap();
            let slice = &text[start..start + date.len()];
            assert_eq!(r.date_time(slice).unwrap().to_string(), *date, "{i}");
        }
    }

    #[test]
    fn errors_name_the_json_pointer_they_are_in() {
        let cases = [
            (
                r#"{"id":"x","data":{"attributes":{"name":tru}}}"#,
                "/data/attributes/name",
            ),
            (r#"{"data":{"tags":["a","b",}}"#, "/data/tags/2"),
            (r#"{"data":{"attributes":{"a":1,}}}"#, "/data/attributes"),
            (
                r#"{"data":{"attributes":{"x/y~z":[1, {"k": -}]}}}"#,
                "/data/attributes/x~1y~0z/1/k",
            ),
            (r#"{"a":{"b":1}, "c": [1] , "d\u0041": nul}"#, "/dA"),
            (r#"{"a":"\"}", "b": [}"#, "/b/0"),
            (r#"{"a":1} x"#, ""),
            ("[1, 2", "/1"),
            ("[1, 2 3]", ""),
            (r#"{"data":{"name":"x""#, "/data"),
            (r#"{"data":{"name":"x" "b":1}}"#, "/data"),
            (r#"{"data":{"name": }}"#, "/data/name"),
            (r#"{"data":{"n":[[1],[2, x]]}}"#, "/data/n/1/1"),
            (r#"{"data":{"n":[[1],[2] x]}}"#, "/data/n"),
            // After a complete number or literal, as after a string: the
            // container's.
            (r#"{"data":{"a":[1,2}}"#, "/data/a"),
            (r#"{"data":{"a":["x","y"}}"#, "/data/a"),
            (r#"{"data":{"a":[true}}"#, "/data/a"),
            (r#"{"data":{"a":[[1],[2}]}}"#, "/data/a/1"),
            (r#"{"data":{"a":[{"b":1},{"c":2]}}"#, "/data/a/1"),
            (r#"{"data":{"a":1]}"#, "/data"),
            // One cut short, or at the end of the text, is the value's,
            // whatever white space follows it there.
            (r#"{"data":{"a":[1,2."#, "/data/a/1"),
            ("{\"data\":{\"a\":[1,2\n", "/data/a/1"),
            ("{\"data\":{\"a\":1 \r\n", "/data/a"),
            ("{\"data\":{\"a\":[\"x\"\n", "/data/a"),
            // A number that goes on with a digit where it cannot is the
            // value's; anything else after a complete one, the container's.
            (r#"{"data":{"a":01}}"#, "/data/a"),
            (r#"{"data":{"a":[1,00]}}"#, "/data/a/1"),
            (r#"{"data":{"a":-01}}"#, "/data/a"),
            (r#"{"data":{"a":1.5.5}}"#, "/data"),
            (r#"{"data":{"a":[1,2e5.1]}}"#, "/data/a"),
            (r#"{"data":{"a":0x1}}"#, "/data"),
            (r#"{"data":{"a":truex}}"#, "/data"),
            (r#"{"data":{"a":[nullnull]}}"#, "/data/a"),
            (r#"{"data":{"a":[1,2.]}}"#, "/data/a/1"),
            (r#"{"data":{"a":[1,nul]}}"#, "/data/a/1"),
        ];
        for (text, want) in cases {
            let e = skip(text).unwrap_err();
            assert_eq!(pointer_at(text.as_bytes(), e.0.pos), want, "{text}");
        }
        // Every prefix of a body gets a pointer, without panicking.
        let body = r#"{"a":[{"b\"c":"d\\"},[]],"e":{"f":null}}"#;
        for pos in 0..=body.len() + 1 {
            let _ = pointer_at(body.as_bytes(), pos);
        }
    }

    #[test]
    fn errors_say_where() {
        let text = "{\n  \"name\": \"x\",\n  oops\n}";
        let e = skip(text).unwrap_err();
        assert_eq!(e.line_column(text.as_bytes()), (3, 3));
        assert_eq!(e.message(), "key must be a string");
    }

    #[test]
    fn finds_special_bytes_at_any_offset() {
        for len in 0..40 {
            for special in [b'"', b'\\', b'\n', 0u8] {
                let mut bytes = vec![b'a'; len];
                bytes.push(special);
                bytes.extend_from_slice(b"\"bbbbbbbbbbb");
                assert_eq!(find_special(&bytes, 0), len);
            }
            assert_eq!(find_special(&vec![b'a'; len], 0), len);
        }
        assert_eq!(find_special("é\u{7f}\"".as_bytes(), 0), 3);
        // Bytes above 0x7f are not control characters, in either half.
        let mut text = "é".repeat(20).into_bytes();
        text.push(b'"');
        assert_eq!(find_special(&text, 0), 40);
        assert_eq!(find_special(&text, 2), 40);
    }
}
