//! Prometheus metrics of the serving layer, exposed in the text format
//! 0.0.4 at `/metrics`. Label handles are resolved once per model version
//! (`VersionMetrics`) so the request path only touches atomics.

use std::time::Duration;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Latency buckets from 10 µs to ~5 s, doubling.
fn latency_buckets() -> Vec<f64> {
    prometheus::exponential_buckets(0.000_01, 2.0, 20).unwrap_or_default()
}

#[derive(Clone)]
pub struct ServingMetrics {
    registry: Registry,
    requests: IntCounterVec,
    queue_seconds: HistogramVec,
    compute_seconds: HistogramVec,
    request_seconds: HistogramVec,
    batch_size: HistogramVec,
    in_flight: IntGaugeVec,
    log_dropped: IntCounter,
}

impl ServingMetrics {
    pub fn new() -> ServingMetrics {
        let labels = ["model", "version"];
        let requests = IntCounterVec::new(
            Opts::new(
                "keel_inference_requests_total",
                "Inference requests by model, version and status",
            ),
            &["model", "version", "status"],
        );
        let histogram = |name: &str, help: &str, buckets: Vec<f64>| {
            HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), &labels)
        };
        let queue_seconds = histogram(
            "keel_inference_queue_seconds",
            "Time a request waited for its batch",
            latency_buckets(),
        );
        let compute_seconds = histogram(
            "keel_inference_compute_seconds",
            "Time the runtime spent on the request's batch",
            latency_buckets(),
        );
        let request_seconds = histogram(
            "keel_inference_request_seconds",
            "Time from a decoded request to its outputs (queue + compute)",
            latency_buckets(),
        );
        let batch_size = histogram(
            "keel_inference_batch_size",
            "Rows per runtime call",
            prometheus::exponential_buckets(1.0, 2.0, 14).unwrap_or_default(),
        );
        let in_flight = IntGaugeVec::new(
            Opts::new(
                "keel_inference_in_flight",
                "Requests being served, by model",
            ),
            &["model"],
        );
        let log_dropped = IntCounter::new(
            "keel_inference_log_dropped_total",
            "Inference log records dropped (queue full or writer failing)",
        );
        let registry = Registry::new();
        // Metric names and labels are static and valid, so creation and
        // registration cannot fail; a failure would only lose the metric.
        let (
            Ok(requests),
            Ok(queue_seconds),
            Ok(compute_seconds),
            Ok(request_seconds),
            Ok(batch_size),
            Ok(in_flight),
            Ok(log_dropped),
        ) = (
            requests,
            queue_seconds,
            compute_seconds,
            request_seconds,
            batch_size,
            in_flight,
            log_dropped,
        )
        else {
            unreachable_metrics()
        };
        for collector in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(queue_seconds.clone()),
            Box::new(compute_seconds.clone()),
            Box::new(request_seconds.clone()),
            Box::new(batch_size.clone()),
            Box::new(in_flight.clone()),
            Box::new(log_dropped.clone()),
        ] {
            if let Err(err) = registry.register(collector) {
                tracing::warn!(error = %err, "cannot register a serving metric");
            }
        }
        ServingMetrics {
            registry,
            requests,
            queue_seconds,
            compute_seconds,
            request_seconds,
            batch_size,
            in_flight,
            log_dropped,
        }
    }

    /// Handles for one model version.
    pub fn for_version(&self, model: &str, version: &str) -> VersionMetrics {
        let labels = [model, version];
        VersionMetrics {
            ok: self.requests.with_label_values(&[model, version, "ok"]),
            invalid: self
                .requests
                .with_label_values(&[model, version, "invalid"]),
            failed: self.requests.with_label_values(&[model, version, "error"]),
            queue_seconds: self.queue_seconds.with_label_values(&labels),
            compute_seconds: self.compute_seconds.with_label_values(&labels),
            request_seconds: self.request_seconds.with_label_values(&labels),
            batch_size: self.batch_size.with_label_values(&labels),
            in_flight: self.in_flight.with_label_values(&[model]),
        }
    }

    /// Counts a request that named no loadable model (status `not_found`).
    pub fn count_unrouted(&self, model: &str) {
        self.requests
            .with_label_values(&[model, "", "not_found"])
            .inc();
    }

    pub fn set_log_dropped(&self, dropped: u64) {
        let seen = self.log_dropped.get();
        if dropped > seen {
            self.log_dropped.inc_by(dropped - seen);
        }
    }

    /// The registry in Prometheus' text format 0.0.4.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        if let Err(err) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!(error = %err, "cannot encode metrics");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

impl Default for ServingMetrics {
    fn default() -> Self {
        ServingMetrics::new()
    }
}

fn unreachable_metrics() -> ! {
    // Only reachable if the static metric definitions above are invalid,
    // which the unit test below rules out.
    panic!("invalid static metric definitions")
}

/// Pre-resolved label handles of one model version.
#[derive(Clone)]
pub struct VersionMetrics {
    ok: IntCounter,
    invalid: IntCounter,
    failed: IntCounter,
    queue_seconds: Histogram,
    compute_seconds: Histogram,
    request_seconds: Histogram,
    batch_size: Histogram,
    in_flight: IntGauge,
}

impl VersionMetrics {
    pub fn start(&self) -> InFlight<'_> {
        self.in_flight.inc();
        InFlight { metrics: self }
    }

    pub fn observe(&self, queued: Duration, compute: Duration, total: Duration, rows: usize) {
        self.queue_seconds.observe(queued.as_secs_f64());
        self.compute_seconds.observe(compute.as_secs_f64());
        self.request_seconds.observe(total.as_secs_f64());
        self.batch_size.observe(rows as f64);
    }

    pub fn count(&self, outcome: Result<(), crate::error::ErrorKind>) {
        match outcome {
            Ok(()) => self.ok.inc(),
            Err(crate::error::ErrorKind::InvalidInput) => self.invalid.inc(),
            Err(_) => self.failed.inc(),
        }
    }
}

/// Decrements the in-flight gauge when dropped (also on early returns).
pub struct InFlight<'a> {
    metrics: &'a VersionMetrics,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.metrics.in_flight.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let metrics = ServingMetrics::new();
        let version = metrics.for_version("churn", "3");
        {
            let _guard = version.start();
            version.observe(
                Duration::from_micros(5),
                Duration::from_micros(20),
                Duration::from_micros(30),
                4,
            );
            version.count(Ok(()));
        }
        version.count(Err(crate::error::ErrorKind::InvalidInput));
        let text = metrics.render();
        assert!(
            text.contains(
                r#"keel_inference_requests_total{model="churn",status="ok",version="3"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains(
            r#"keel_inference_requests_total{model="churn",status="invalid",version="3"} 1"#
        ));
        assert!(
            text.contains(r#"keel_inference_request_seconds_count{model="churn",version="3"} 1"#)
        );
        assert!(text.contains(r#"keel_inference_in_flight{model="churn"} 0"#));
        assert!(text.contains("# TYPE keel_inference_batch_size histogram"));
    }
}
