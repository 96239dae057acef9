//! Adaptive batching: concurrent requests to one model version are merged
//! along the first dimension into one runtime call, and the outputs split
//! back by rows in request order. Off unless `max_batch_size > 1`.
//!
//! A batch closes when it holds `max_batch_size` rows or when
//! `max_batch_delay` has passed since its first request, whichever comes
//! first. Requests whose inputs cannot be stacked with the open batch (other
//! input names, datatypes or row shapes) run in a batch of their own.

use std::sync::Arc;
use std::time::{Duration, Instant};

use keel_core::tensor::{Tensor, TensorData};
use tokio::sync::{mpsc, oneshot};

use crate::runtime::Runtime;
use crate::{NamedTensor, ServingError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSettings {
    /// Most rows one runtime call receives.
    pub max_batch_size: usize,
    /// Longest a request waits for others to join its batch.
    pub max_batch_delay: Duration,
}

type Reply = oneshot::Sender<Result<(Vec<NamedTensor>, Duration), ServingError>>;

struct Pending {
    inputs: Vec<NamedTensor>,
    rows: usize,
    arrived: Instant,
    reply: Reply,
}

/// Handle to a version's batching task.
#[derive(Clone)]
pub struct Batcher {
    sender: mpsc::Sender<Pending>,
}

impl Batcher {
    /// Spawns the batching task for `runtime`; it ends when every handle is dropped.
    pub fn start(runtime: Arc<dyn Runtime>, settings: BatchSettings) -> Batcher {
        let (sender, receiver) = mpsc::channel(settings.max_batch_size.max(1) * 16);
        tokio::spawn(run_batches(runtime, settings, receiver));
        Batcher { sender }
    }

    /// Queues a request; answers its outputs and the time it waited in the queue.
    pub async fn submit(
        &self,
        inputs: Vec<NamedTensor>,
    ) -> Result<(Vec<NamedTensor>, Duration), ServingError> {
        let rows = batch_rows(&inputs)?;
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            inputs,
            rows,
            arrived: Instant::now(),
            reply,
        };
        self.sender
            .send(pending)
            .await
            .map_err(|_| ServingError::unavailable("the model's batching queue is closed"))?;
        answer
            .await
            .map_err(|_| ServingError::internal("the batching task stopped before answering"))?
    }
}

/// Rows of a request: the common first dimension of its inputs.
fn batch_rows(inputs: &[NamedTensor]) -> Result<usize, ServingError> {
    let mut rows = None;
    for input in inputs {
        if input.tensor.shape().is_empty() {
            return Err(ServingError::invalid(format!(
                "input '{}' is a scalar; batched models need a batch dimension",
                input.name
            )));
        }
        let first = input.tensor.batch_size();
        match rows {
            None => rows = Some(first),
            Some(rows) if rows != first => {
                return Err(ServingError::invalid(format!(
                    "inputs disagree on the batch size: {rows} and {first} ('{}')",
                    input.name
                )))
            }
            Some(_) => {}
        }
    }
    Ok(rows.unwrap_or(0))
}

/// Whether two requests' inputs stack: same names, datatypes and row shapes, in order.
fn stackable(a: &[NamedTensor], b: &[NamedTensor]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.name == y.name
                && x.tensor.datatype() == y.tensor.datatype()
                && x.tensor.shape().get(1..) == y.tensor.shape().get(1..)
        })
}

async fn run_batches(
    runtime: Arc<dyn Runtime>,
    settings: BatchSettings,
    mut receiver: mpsc::Receiver<Pending>,
) {
    let mut carried: Option<Pending> = None;
    loop {
        let first = match carried.take() {
            Some(pending) => pending,
            None => match receiver.recv().await {
                Some(pending) => pending,
                None => return,
            },
        };
        let deadline = tokio::time::Instant::from_std(first.arrived + settings.max_batch_delay);
        let mut rows = first.rows;
        let mut batch = vec![first];
        while rows < settings.max_batch_size {
            let next = match receiver.try_recv() {
                Ok(pending) => Some(pending),
                Err(mpsc::error::TryRecvError::Disconnected) => None,
                Err(mpsc::error::TryRecvError::Empty) => {
                    tokio::time::timeout_at(deadline, receiver.recv())
                        .await
                        .unwrap_or_default()
                }
            };
            let Some(next) = next else { break };
            if !stackable(&batch[0].inputs, &next.inputs)
                || rows + next.rows > settings.max_batch_size
            {
                carried = Some(next);
                break;
            }
            rows += next.rows;
            batch.push(next);
        }
        // The runtime call happens on its own task so the next batch can
        // form while this one computes.
        let runtime = runtime.clone();
        tokio::spawn(async move { run_one_batch(runtime.as_ref(), batch).await });
    }
}

async fn run_one_batch(runtime: &dyn Runtime, mut batch: Vec<Pending>) {
    let started = Instant::now();
    if batch.len() == 1 {
        let Some(pending) = batch.pop() else { return };
        let queued = started - pending.arrived;
        let result = runtime
            .infer(pending.inputs)
            .await
            .map(|outputs| (outputs, queued));
        let _ = pending.reply.send(result);
        return;
    }
    let merged = match merge_inputs(&batch) {
        Ok(merged) => merged,
        Err(err) => {
            for pending in batch {
                let _ = pending.reply.send(Err(err.clone()));
            }
            return;
        }
    };
    let total_rows: usize = batch.iter().map(|pending| pending.rows).sum();
    match runtime.infer(merged).await {
        Ok(outputs) => {
            let mut offset = 0;
            for pending in batch {
                let queued = started - pending.arrived;
                let part = split_outputs(&outputs, total_rows, offset, pending.rows);
                offset += pending.rows;
                let _ = pending.reply.send(part.map(|outputs| (outputs, queued)));
            }
        }
        Err(err) => {
            for pending in batch {
                let _ = pending.reply.send(Err(err.clone()));
            }
        }
    }
}

fn merge_inputs(batch: &[Pending]) -> Result<Vec<NamedTensor>, ServingError> {
    let template = &batch[0].inputs;
    let mut merged = Vec::with_capacity(template.len());
    for (idx, input) in template.iter().enumerate() {
        let total: usize = batch
            .iter()
            .map(|pending| pending.inputs[idx].tensor.len())
            .sum();
        let mut data = TensorData::with_capacity(input.tensor.datatype(), total);
        let mut rows = 0;
        for pending in batch {
            let tensor = &pending.inputs[idx].tensor;
            data.extend_from(tensor.data());
            rows += tensor.batch_size();
        }
        let mut shape = input.tensor.shape().to_vec();
        shape[0] = rows;
        let tensor =
            Tensor::new(shape, data).map_err(|err| ServingError::internal(err.to_string()))?;
        merged.push(NamedTensor {
            name: input.name.clone(),
            tensor,
            parameters: input.parameters.clone(),
        });
    }
    Ok(merged)
}

/// Rows `offset..offset+rows` of every output that carries the batch dimension.
fn split_outputs(
    outputs: &[NamedTensor],
    total_rows: usize,
    offset: usize,
    rows: usize,
) -> Result<Vec<NamedTensor>, ServingError> {
    outputs
        .iter()
        .map(|output| {
            let shape = output.tensor.shape();
            if shape.first() != Some(&total_rows) {
                return Err(ServingError::internal(format!(
                    "output '{}' has shape {shape:?}, which does not keep the batch of {total_rows} rows; \
                     turn batching off for this model",
                    output.name
                )));
            }
            let row_len = output.tensor.row_len();
            let data = output
                .tensor
                .data()
                .slice(offset * row_len, (offset + rows) * row_len);
            let mut part_shape = shape.to_vec();
            part_shape[0] = rows;
            let tensor = Tensor::new(part_shape, data).map_err(|err| ServingError::internal(err.to_string()))?;
            Ok(NamedTensor {
                name: output.name.clone(),
                tensor,
                parameters: output.parameters.clone(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TensorSpec;
    use async_trait::async_trait;
    use keel_core::tensor::DataType;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Doubles "x" and counts runtime calls.
    struct Doubler {
        calls: AtomicUsize,
        specs: Vec<TensorSpec>,
    }

    #[async_trait]
    impl Runtime for Doubler {
        fn platform(&self) -> &str {
            "test"
        }
        fn inputs(&self) -> &[TensorSpec] {
            &self.specs
        }
        fn outputs(&self) -> &[TensorSpec] {
            &self.specs
        }
        async fn infer(&self, inputs: Vec<NamedTensor>) -> Result<Vec<NamedTensor>, ServingError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let (shape, data) = inputs[0].tensor.clone().into_parts();
            let TensorData::F32(values) = data else {
                return Err(ServingError::invalid("want FP32"));
            };
            let doubled = TensorData::F32(values.iter().map(|v| v * 2.0).collect());
            Ok(vec![NamedTensor::new(
                "y",
                Tensor::new(shape, doubled).unwrap(),
            )])
        }
    }

    fn rows(values: &[f32]) -> Vec<NamedTensor> {
        let tensor = Tensor::new(vec![values.len(), 1], TensorData::F32(values.to_vec())).unwrap();
        vec![NamedTensor::new("x", tensor)]
    }

    #[tokio::test]
    async fn concurrent_requests_share_a_call_and_keep_their_rows() {
        let runtime = Arc::new(Doubler {
            calls: AtomicUsize::new(0),
            specs: vec![TensorSpec {
                name: "x".into(),
                datatype: DataType::F32,
                shape: vec![-1, 1],
            }],
        });
        let batcher = Batcher::start(
            runtime.clone(),
            BatchSettings {
                max_batch_size: 64,
                max_batch_delay: Duration::from_millis(200),
            },
        );
        let mut handles = Vec::new();
        for idx in 0..8 {
            let batcher = batcher.clone();
            let values: Vec<f32> = (0..=idx).map(|v| (idx * 100 + v) as f32).collect();
            handles.push(tokio::spawn(async move {
                let (outputs, _) = batcher.submit(rows(&values)).await.unwrap();
                (values, outputs)
            }));
        }
        for handle in handles {
            let (values, outputs) = handle.await.unwrap();
            let expected: Vec<f32> = values.iter().map(|v| v * 2.0).collect();
            assert_eq!(outputs[0].tensor.data(), &TensorData::F32(expected));
            assert_eq!(outputs[0].tensor.shape(), &[values.len(), 1]);
        }
        assert!(
            runtime.calls.load(Ordering::SeqCst) < 8,
            "requests were not merged"
        );
    }

    #[tokio::test]
    async fn requests_that_do_not_stack_still_answer() {
        let runtime = Arc::new(Doubler {
            calls: AtomicUsize::new(0),
            specs: Vec::new(),
        });
        let batcher = Batcher::start(
            runtime,
            BatchSettings {
                max_batch_size: 4,
                max_batch_delay: Duration::from_millis(50),
            },
        );
        let wide = Tensor::new(vec![1, 2], TensorData::F32(vec![1.0, 2.0])).unwrap();
        let (a, b) = tokio::join!(
            batcher.submit(rows(&[1.0, 2.0, 3.0])),
            batcher.submit(vec![NamedTensor::new("x", wide)])
        );
        assert_eq!(
            a.unwrap().0[0].tensor.data(),
            &TensorData::F32(vec![2.0, 4.0, 6.0])
        );
        assert_eq!(b.unwrap().0[0].tensor.shape(), &[1, 2]);
        let scalar = Tensor::new(vec![], TensorData::F32(vec![1.0])).unwrap();
        assert!(batcher
            .submit(vec![NamedTensor::new("x", scalar)])
            .await
            .is_err());
    }
}
