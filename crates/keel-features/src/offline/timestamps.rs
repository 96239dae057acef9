//! Timestamps as the engine compares them: microseconds since the epoch, UTC.

use arrow::array::{ArrayRef, AsArray, Int64Array};
use arrow::compute::{cast_with_options, CastOptions};
use arrow::datatypes::{
    DataType, Date32Type, Date64Type, Int64Type, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};
use arrow::util::display::FormatOptions;

use crate::{FeatureError, Result};

const MICROS_PER_DAY: i64 = 86_400_000_000;

/// Types a timestamp column may have: any temporal point, or strings to parse.
pub(crate) fn is_timestamp_type(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Timestamp(_, _)
            | DataType::Date32
            | DataType::Date64
            | DataType::Utf8
            | DataType::LargeUtf8
    )
}

/// Microseconds since the epoch (UTC) of a timestamp column; timestamps
/// without a time zone are UTC. Nanoseconds round down.
pub(crate) fn to_micros(array: &ArrayRef) -> Result<Int64Array> {
    let micros =
        match array.data_type() {
            DataType::Timestamp(TimeUnit::Second, _) => array
                .as_primitive::<TimestampSecondType>()
                .unary::<_, Int64Type>(|seconds| seconds.saturating_mul(1_000_000)),
            DataType::Timestamp(TimeUnit::Millisecond, _) => array
                .as_primitive::<TimestampMillisecondType>()
                .unary::<_, Int64Type>(|millis| millis.saturating_mul(1_000)),
            DataType::Timestamp(TimeUnit::Microsecond, _) => array
                .as_primitive::<TimestampMicrosecondType>()
                .reinterpret_cast::<Int64Type>(),
            DataType::Timestamp(TimeUnit::Nanosecond, _) => array
                .as_primitive::<TimestampNanosecondType>()
                .unary::<_, Int64Type>(|nanos| nanos.div_euclid(1_000)),
            DataType::Date32 => array
                .as_primitive::<Date32Type>()
                .unary::<_, Int64Type>(|days| i64::from(days) * MICROS_PER_DAY),
            DataType::Date64 => array
                .as_primitive::<Date64Type>()
                .unary::<_, Int64Type>(|millis| millis.saturating_mul(1_000)),
            DataType::Utf8 | DataType::LargeUtf8 => {
                let options = CastOptions {
                    safe: false,
                    format_options: FormatOptions::default(),
                };
                // "+00:00" rather than "UTC": arrow parses named zones only with chrono-tz.
                let utc = DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into()));
                let parsed = cast_with_options(array, &utc, &options)?;
                parsed
                    .as_primitive::<TimestampMicrosecondType>()
                    .reinterpret_cast::<Int64Type>()
            }
            other => {
                return Err(FeatureError::invalid(format!(
                    "cannot read a timestamp from a column of type {other}"
                )))
            }
        };
    Ok(micros)
}
