//! Keel's gRPC front: the Open Inference Protocol v2 service
//! `inference.GRPCInferenceService` (the one `tritonclient[grpc]` and KServe
//! clients speak) over keel-serving's protocol-neutral `ModelManager`.
//! `proto/grpc_service.proto` is the wire contract; no protoc is needed to
//! build it.

mod convert;
pub mod proto;
mod service;

use std::future::Future;

use keel_serving::ModelManager;
use tonic::transport::server::TcpIncoming;

pub use service::{status, InferenceService};

/// Largest message decoded or encoded, in bytes: 64 MiB. gRPC's usual 4 MiB
/// is too small for image batches; larger tensors belong in the REST binary
/// extension or in several requests.
pub const MAX_MESSAGE_SIZE: usize = 64 * 1024 * 1024;

/// The tonic service for `inference.GRPCInferenceService`, ready to add to a
/// `tonic::transport::Server`, with message limits of `MAX_MESSAGE_SIZE`.
pub fn service(manager: ModelManager) -> proto::GrpcInferenceServiceServer<InferenceService> {
    proto::GrpcInferenceServiceServer::new(InferenceService::new(manager))
        .max_decoding_message_size(MAX_MESSAGE_SIZE)
        .max_encoding_message_size(MAX_MESSAGE_SIZE)
}

/// Serves the protocol on `listener` until `shutdown` resolves, then lets
/// requests in flight finish.
pub async fn serve(
    manager: ModelManager,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    tonic::transport::Server::builder()
        .serve_with_incoming_shutdown(service(manager), incoming, shutdown)
        .await
}
