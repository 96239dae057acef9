//! HyperLogLog distinct-count estimate (Flajolet et al. 2007, with linear
//! counting for small cardinalities); registers merge by maximum.

use serde::{Deserialize, Serialize};
use std::hash::Hasher;
use twox_hash::XxHash64;

/// 2^12 registers: a standard error of 1.04 / sqrt(4096), about 1.6%.
const PRECISION: u32 = 12;
const REGISTERS: usize = 1 << PRECISION;

/// A HyperLogLog sketch; hashing is xxHash64 with seed 0, stable across
/// processes and versions, so serialized sketches merge anywhere.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HyperLogLog {
    /// Serialized as one hex string: 8 KiB of text instead of 4096 numbers.
    #[serde(with = "hex_registers")]
    registers: Vec<u8>,
}

mod hex_registers {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(registers: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        let text: String = registers
            .iter()
            .map(|register| format!("{register:02x}"))
            .collect();
        serializer.serialize_str(&text)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        if text.len() != 2 * super::REGISTERS || !text.is_ascii() {
            return Err(D::Error::custom(format!(
                "hyperloglog registers must be {} hex digits",
                2 * super::REGISTERS
            )));
        }
        (0..text.len())
            .step_by(2)
            .map(|start| u8::from_str_radix(&text[start..start + 2], 16).map_err(D::Error::custom))
            .collect()
    }
}

impl Default for HyperLogLog {
    fn default() -> Self {
        Self {
            registers: vec![0; REGISTERS],
        }
    }
}

impl HyperLogLog {
    pub fn insert_bytes(&mut self, bytes: &[u8]) {
        let mut hasher = XxHash64::with_seed(0);
        hasher.write(bytes);
        let hash = hasher.finish();
        let index = (hash >> (64 - PRECISION)) as usize;
        let rest = (hash << PRECISION) | (1 << (PRECISION - 1));
        let rank = rest.leading_zeros() as u8 + 1;
        if let Some(register) = self.registers.get_mut(index) {
            *register = (*register).max(rank);
        }
    }

    pub fn merge(&mut self, other: &HyperLogLog) {
        for (mine, theirs) in self.registers.iter_mut().zip(&other.registers) {
            *mine = (*mine).max(*theirs);
        }
    }

    /// Estimated number of distinct items inserted.
    pub fn estimate(&self) -> f64 {
        let registers = REGISTERS as f64;
        let alpha = 0.7213 / (1.0 + 1.079 / registers);
        let harmonic: f64 = self
            .registers
            .iter()
            .map(|rank| 2f64.powi(-i32::from(*rank)))
            .sum();
        let raw = alpha * registers * registers / harmonic;
        let zeros = self.registers.iter().filter(|rank| **rank == 0).count();
        if raw <= 2.5 * registers && zeros > 0 {
            return registers * (registers / zeros as f64).ln();
        }
        raw
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_round_trip_as_hex_and_bad_text_is_refused() {
        let mut sketch = HyperLogLog::default();
        sketch.insert_bytes(b"keel");
        let text = serde_json::to_string(&sketch).unwrap_or_default();
        assert!(text.len() < 2 * REGISTERS + 32, "{} bytes", text.len());
        let back: HyperLogLog = serde_json::from_str(&text).unwrap_or_default();
        assert_eq!(back, sketch);
        assert!(serde_json::from_str::<HyperLogLog>(r#"{"registers":"zz"}"#).is_err());
    }

    #[test]
    fn estimates_are_within_a_few_percent() {
        for n in [10u64, 1_000, 100_000] {
            let mut sketch = HyperLogLog::default();
            for item in 0..n {
                sketch.insert_bytes(&item.to_le_bytes());
                sketch.insert_bytes(&item.to_le_bytes());
            }
            let error = (sketch.estimate() - n as f64).abs() / n as f64;
            assert!(error < 0.05, "n={n} estimate={}", sketch.estimate());
        }
    }
}
