//! YAML 1.2 implicit typing as ruamel.yaml applies it to plain scalars: a
//! value that would read back as a bool, null, number or timestamp must be
//! quoted.

/// Whether YAML 1.2 (as ruamel resolves plain scalars) reads `value` as
/// something other than a string.
pub fn resolves_to_non_string(value: &str) -> bool {
    matches!(
        value,
        "" | "~"
            | "null"
            | "Null"
            | "NULL"
            | "true"
            | "True"
            | "TRUE"
            | "false"
            | "False"
            | "FALSE"
            | "<<"
            | "="
    ) || is_int(value)
        || is_float(value)
        || is_timestamp(value)
}

/// A tiny cursor over ASCII bytes for the resolver's patterns.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(text: &'a str) -> Self {
        Cursor {
            bytes: text.as_bytes(),
            pos: 0,
        }
    }
    fn done(&self) -> bool {
        self.pos == self.bytes.len()
    }
    fn eat(&mut self, accept: impl Fn(u8) -> bool) -> bool {
        match self.bytes.get(self.pos) {
            Some(&byte) if accept(byte) => {
                self.pos += 1;
                true
            }
            _ => false,
        }
    }
    fn eat_str(&mut self, text: &str) -> bool {
        if self.bytes[self.pos..].starts_with(text.as_bytes()) {
            self.pos += text.len();
            return true;
        }
        false
    }
    /// Eats as many as match; returns how many.
    fn eat_many(&mut self, accept: impl Fn(u8) -> bool) -> usize {
        let start = self.pos;
        while self.eat(&accept) {}
        self.pos - start
    }
    fn eat_sign(&mut self) {
        self.eat(|byte| byte == b'-' || byte == b'+');
    }
}

fn digit_or_underscore(byte: u8) -> bool {
    byte.is_ascii_digit() || byte == b'_'
}

fn is_int(value: &str) -> bool {
    // ruamel only tries the pattern on text starting with one of these.
    if !value.starts_with(|first: char| "-+0123456789".contains(first)) {
        return false;
    }
    let alternatives: [fn(&mut Cursor) -> bool; 4] = [
        |cursor| {
            cursor.eat_str("0b") && cursor.eat_many(|b| b == b'0' || b == b'1' || b == b'_') > 0
        },
        |cursor| {
            cursor.eat_str("0") && {
                cursor.eat(|b| b == b'o');
                cursor.eat_many(|b| (b'0'..=b'7').contains(&b) || b == b'_') > 0
            }
        },
        |cursor| cursor.eat_many(digit_or_underscore) > 0,
        |cursor| {
            cursor.eat_str("0x") && cursor.eat_many(|b| b.is_ascii_hexdigit() || b == b'_') > 0
        },
    ];
    alternatives.iter().any(|alternative| {
        let mut cursor = Cursor::new(value);
        cursor.eat_sign();
        alternative(&mut cursor) && cursor.done()
    })
}

/// `[eE][-+]?[0-9]+`, with the sign required when `sign_required`.
fn eat_exponent(cursor: &mut Cursor, sign_required: bool) -> bool {
    if !cursor.eat(|b| b == b'e' || b == b'E') {
        return false;
    }
    let has_sign = cursor.eat(|b| b == b'-' || b == b'+');
    (has_sign || !sign_required) && cursor.eat_many(|b| b.is_ascii_digit()) > 0
}

fn is_float(value: &str) -> bool {
    let alternatives: [fn(&mut Cursor) -> bool; 5] = [
        |cursor| {
            cursor.eat_sign();
            if !(cursor.eat(|b| b.is_ascii_digit()) && {
                cursor.eat_many(digit_or_underscore);
                cursor.eat(|b| b == b'.')
            }) {
                return false;
            }
            cursor.eat_many(digit_or_underscore);
            cursor.done() || eat_exponent(cursor, false)
        },
        |cursor| {
            cursor.eat_sign();
            cursor.eat(|b| b.is_ascii_digit()) && {
                cursor.eat_many(digit_or_underscore);
                eat_exponent(cursor, false)
            }
        },
        |cursor| {
            cursor.eat_sign();
            cursor.eat(|b| b == b'.')
                && cursor.eat_many(digit_or_underscore) > 0
                && (cursor.done() || eat_exponent(cursor, true))
        },
        |cursor| {
            cursor.eat_sign();
            cursor.eat(|b| b == b'.')
                && (cursor.eat_str("inf") || cursor.eat_str("Inf") || cursor.eat_str("INF"))
        },
        |cursor| cursor.eat_str(".nan") || cursor.eat_str(".NaN") || cursor.eat_str(".NAN"),
    ];
    alternatives.iter().any(|alternative| {
        let mut cursor = Cursor::new(value);
        alternative(&mut cursor) && cursor.done()
    })
}

fn is_timestamp(value: &str) -> bool {
    let digit = |b: u8| b.is_ascii_digit();
    let dash = |b: u8| b == b'-';
    let colon = |b: u8| b == b':';
    let mut cursor = Cursor::new(value);
    // Date only: YYYY-MM-DD.
    if cursor.eat_many(digit) == 4
        && cursor.eat(dash)
        && cursor.eat_many(digit) == 2
        && cursor.eat(dash)
        && cursor.eat_many(digit) == 2
        && cursor.done()
    {
        return true;
    }
    // Date and time: YYYY-M-D(T| +)H:MM:SS(.frac)?( *(Z|±H(:MM)?))?
    let mut cursor = Cursor::new(value);
    let one_or_two = |cursor: &mut Cursor| (1..=2).contains(&cursor.eat_many(digit));
    if !(cursor.eat_many(digit) == 4
        && cursor.eat(dash)
        && one_or_two(&mut cursor)
        && cursor.eat(dash)
        && one_or_two(&mut cursor))
    {
        return false;
    }
    if !cursor.eat(|b| b == b'T' || b == b't') && cursor.eat_many(|b| b == b' ' || b == b'\t') == 0
    {
        return false;
    }
    if !(one_or_two(&mut cursor)
        && cursor.eat(colon)
        && cursor.eat_many(digit) == 2
        && cursor.eat(colon)
        && cursor.eat_many(digit) == 2)
    {
        return false;
    }
    if cursor.eat(|b| b == b'.') {
        cursor.eat_many(digit);
    }
    if cursor.done() {
        return true;
    }
    cursor.eat_many(|b| b == b' ' || b == b'\t');
    if cursor.eat(|b| b == b'Z') {
        return cursor.done();
    }
    if !(cursor.eat(|b| b == b'-' || b == b'+') && one_or_two(&mut cursor)) {
        return false;
    }
    if cursor.eat(colon) && cursor.eat_many(digit) != 2 {
        return false;
    }
    cursor.done()
}
