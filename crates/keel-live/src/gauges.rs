//! The latest verdicts as Prometheus gauges, labelled by monitor, model,
//! version and feature (or metric), rendered in text format 0.0.4 next to
//! the serving metrics.

use prometheus::{Encoder, GaugeVec, Opts, Registry, TextEncoder};

use crate::service::{MonitorResult, Status};

pub struct Gauges {
    registry: Registry,
    drift_score: GaugeVec,
    drift_detected: GaugeVec,
    drifted_share: GaugeVec,
    dataset_drift: GaugeVec,
    missing_share: GaugeVec,
    window_rows: GaugeVec,
    last_evaluation: GaugeVec,
    performance: GaugeVec,
    alert_firing: GaugeVec,
    estimated: GaugeVec,
    reconstruction_error: GaugeVec,
    multivariate_drift: GaugeVec,
}

fn gauge(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    let gauge =
        GaugeVec::new(Opts::new(name, help), labels).expect("gauge names and labels are valid");
    registry
        .register(Box::new(gauge.clone()))
        .expect("each gauge is registered once");
    gauge
}

impl Gauges {
    pub fn new() -> Gauges {
        let registry = Registry::new();
        let version = ["monitor", "model", "version"];
        let feature = ["monitor", "model", "version", "feature"];
        Gauges {
            drift_score: gauge(
                &registry,
                "keel_drift_score",
                "Drift test score of a feature (p-value or distance, see the test)",
                &feature,
            ),
            drift_detected: gauge(
                &registry,
                "keel_drift_detected",
                "1 when the feature drifted in the last evaluation",
                &feature,
            ),
            drifted_share: gauge(
                &registry,
                "keel_drifted_columns_share",
                "Share of drifted features in the last evaluation",
                &version,
            ),
            dataset_drift: gauge(
                &registry,
                "keel_dataset_drift_detected",
                "1 when the share of drifted features reached the monitor's drift_share",
                &version,
            ),
            missing_share: gauge(
                &registry,
                "keel_missing_values_share",
                "Share of a feature's window values that are null or NaN",
                &feature,
            ),
            window_rows: gauge(
                &registry,
                "keel_monitor_window_rows",
                "Inference-log rows in the last evaluated window",
                &version,
            ),
            last_evaluation: gauge(
                &registry,
                "keel_monitor_last_evaluation_timestamp_seconds",
                "Unix time of the monitor's last evaluation",
                &["monitor"],
            ),
            performance: gauge(
                &registry,
                "keel_model_performance",
                "Model performance on the labelled rows of the window",
                &["monitor", "model", "version", "metric"],
            ),
            reconstruction_error: gauge(
                &registry,
                "keel_multivariate_reconstruction_error",
                "The window's PCA reconstruction error (NannyML's multivariate drift)",
                &version,
            ),
            multivariate_drift: gauge(
                &registry,
                "keel_multivariate_drift_detected",
                "1 when the reconstruction error left the reference's thresholds",
                &version,
            ),
            estimated: gauge(
                &registry,
                "keel_model_estimated_performance",
                "Performance estimated without labels (CBPE) on the window's latest chunk",
                &["monitor", "model", "version", "metric"],
            ),
            alert_firing: gauge(
                &registry,
                "keel_monitor_alert_firing",
                "1 while the alert rule is firing",
                &["monitor", "model", "version", "alert"],
            ),
            registry,
        }
    }

    pub fn set_alert(&self, result: &MonitorResult, alert: &str, firing: bool) {
        self.alert_firing
            .with_label_values(&[
                result.monitor.as_str(),
                result.model.as_str(),
                result.version.as_str(),
                alert,
            ])
            .set(f64::from(u8::from(firing)));
    }

    pub fn record(&self, result: &MonitorResult) {
        self.last_evaluation
            .with_label_values(&[result.monitor.as_str()])
            .set(result.evaluated_at.timestamp_millis() as f64 / 1000.0);
        let version = [
            result.monitor.as_str(),
            result.model.as_str(),
            result.version.as_str(),
        ];
        self.window_rows
            .with_label_values(&version)
            .set(result.rows as f64);
        if result.status != Status::Ok {
            return;
        }
        if let Some(drift) = &result.drift {
            self.drifted_share
                .with_label_values(&version)
                .set(drift.drifted_share);
            self.dataset_drift
                .with_label_values(&version)
                .set(f64::from(u8::from(drift.dataset_drifted)));
            for column in &drift.columns {
                let labels = [version[0], version[1], version[2], column.column.as_str()];
                self.drift_score
                    .with_label_values(&labels)
                    .set(column.score);
                self.drift_detected
                    .with_label_values(&labels)
                    .set(f64::from(u8::from(column.drifted)));
            }
        }
        for (feature, quality) in &result.data_quality {
            let labels = [version[0], version[1], version[2], feature.as_str()];
            self.missing_share
                .with_label_values(&labels)
                .set(quality.missing_share);
        }
        if let Some(chunk) = &result.multivariate {
            self.reconstruction_error
                .with_label_values(&version)
                .set(chunk.reconstruction_error);
            self.multivariate_drift
                .with_label_values(&version)
                .set(f64::from(u8::from(chunk.alert)));
        }
        if let Some(estimated) = &result.estimated_performance {
            if let Some(chunk) = estimated.chunks.last() {
                for metric in keel_monitor::cbpe::Metric::ALL {
                    if let Some(value) = chunk.metrics.get(metric).value {
                        let labels = [version[0], version[1], version[2], metric.name()];
                        self.estimated.with_label_values(&labels).set(value);
                    }
                }
            }
        }
        if let Some(performance) = &result.performance {
            for (metric, value) in &performance.metrics {
                let labels = [version[0], version[1], version[2], metric.as_str()];
                self.performance.with_label_values(&labels).set(*value);
            }
        }
    }

    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        if TextEncoder::new()
            .encode(&self.registry.gather(), &mut buffer)
            .is_err()
        {
            return String::new();
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}

impl Default for Gauges {
    fn default() -> Self {
        Gauges::new()
    }
}
