//! `InferenceService`: the `inference.GRPCInferenceService` handlers over a
//! `ModelManager`, and the one place serving errors become gRPC statuses.

use keel_serving::error::ErrorKind;
use keel_serving::{ModelManager, ServingError};
use tonic::{Request, Response, Status};

use crate::convert::{self, non_empty};
use crate::proto::{
    GrpcInferenceService, ModelInferRequest, ModelInferResponse, ModelMetadataRequest,
    ModelMetadataResponse, ModelReadyRequest, ModelReadyResponse, ServerLiveRequest,
    ServerLiveResponse, ServerMetadataRequest, ServerMetadataResponse, ServerReadyRequest,
    ServerReadyResponse,
};

/// Answers the Open Inference Protocol's RPCs from a `ModelManager`.
#[derive(Clone)]
pub struct InferenceService {
    manager: ModelManager,
}

impl InferenceService {
    pub fn new(manager: ModelManager) -> InferenceService {
        InferenceService { manager }
    }
}

#[tonic::async_trait]
impl GrpcInferenceService for InferenceService {
    async fn server_live(
        &self,
        _request: Request<ServerLiveRequest>,
    ) -> Result<Response<ServerLiveResponse>, Status> {
        Ok(Response::new(ServerLiveResponse {
            live: self.manager.is_live(),
        }))
    }

    async fn server_ready(
        &self,
        _request: Request<ServerReadyRequest>,
    ) -> Result<Response<ServerReadyResponse>, Status> {
        Ok(Response::new(ServerReadyResponse {
            ready: self.manager.is_ready(),
        }))
    }

    /// An unknown model or version is `ready: false`, not an error:
    /// tritonclient's `is_model_ready` raises on any error status.
    async fn model_ready(
        &self,
        request: Request<ModelReadyRequest>,
    ) -> Result<Response<ModelReadyResponse>, Status> {
        let ModelReadyRequest { name, version } = request.into_inner();
        let version = non_empty(version);
        Ok(Response::new(ModelReadyResponse {
            ready: self.manager.model_ready(&name, version.as_deref()),
        }))
    }

    async fn server_metadata(
        &self,
        _request: Request<ServerMetadataRequest>,
    ) -> Result<Response<ServerMetadataResponse>, Status> {
        let metadata = self.manager.server_metadata();
        Ok(Response::new(ServerMetadataResponse {
            name: metadata.name,
            version: metadata.version,
            extensions: metadata.extensions,
        }))
    }

    async fn model_metadata(
        &self,
        request: Request<ModelMetadataRequest>,
    ) -> Result<Response<ModelMetadataResponse>, Status> {
        let ModelMetadataRequest { name, version } = request.into_inner();
        let version = non_empty(version);
        let metadata = self
            .manager
            .model_metadata(&name, version.as_deref())
            .map_err(status)?;
        Ok(Response::new(convert::encode_model_metadata(metadata)))
    }

    async fn model_infer(
        &self,
        request: Request<ModelInferRequest>,
    ) -> Result<Response<ModelInferResponse>, Status> {
        let decoded = convert::decode_infer_request(request.into_inner()).map_err(status)?;
        let request_id = decoded.request.id.clone();
        let manager = self.manager.clone();
        // A task of its own, so a runtime that panics fails this request
        // with INTERNAL instead of taking the connection down.
        let inference = tokio::spawn(async move {
            manager
                .infer(
                    &decoded.model_name,
                    decoded.model_version.as_deref(),
                    decoded.request,
                )
                .await
        });
        let response = match inference.await {
            Ok(result) => result.map_err(status)?,
            Err(join_error) => {
                tracing::error!(error = %join_error, "inference task failed");
                return Err(Status::internal(
                    "inference failed unexpectedly; see the server log",
                ));
            }
        };
        Ok(Response::new(convert::encode_infer_response(
            response, request_id,
        )))
    }
}

/// The gRPC status of a serving error; the message goes to the client as is.
pub fn status(error: ServingError) -> Status {
    match error.kind {
        ErrorKind::InvalidInput => Status::invalid_argument(error.message),
        ErrorKind::NotFound => Status::not_found(error.message),
        ErrorKind::Unavailable => Status::unavailable(error.message),
        ErrorKind::Internal => Status::internal(error.message),
    }
}
