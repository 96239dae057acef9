//! Generates the tonic client and server plumbing of
//! `inference.GRPCInferenceService` without protoc: the messages are written
//! by hand in `src/proto.rs`, `tonic_build::manual` writes the rest.

use std::path::PathBuf;

use tonic_build::manual::{Builder, Method, Service};

/// `(rust method name, protocol method name, request type, response type)`.
const METHODS: &[(&str, &str, &str, &str)] = &[
    (
        "server_live",
        "ServerLive",
        "ServerLiveRequest",
        "ServerLiveResponse",
    ),
    (
        "server_ready",
        "ServerReady",
        "ServerReadyRequest",
        "ServerReadyResponse",
    ),
    (
        "model_ready",
        "ModelReady",
        "ModelReadyRequest",
        "ModelReadyResponse",
    ),
    (
        "server_metadata",
        "ServerMetadata",
        "ServerMetadataRequest",
        "ServerMetadataResponse",
    ),
    (
        "model_metadata",
        "ModelMetadata",
        "ModelMetadataRequest",
        "ModelMetadataResponse",
    ),
    (
        "model_infer",
        "ModelInfer",
        "ModelInferRequest",
        "ModelInferResponse",
    ),
];

/// The protocol's spelling, which is part of every route.
const SERVICE_NAME: &str = "GRPCInferenceService";
const PACKAGE: &str = "inference";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let mut service = Service::builder().name(SERVICE_NAME).package(PACKAGE);
    for (rust_name, route_name, request, response) in METHODS {
        service = service.method(
            Method::builder()
                .name(*rust_name)
                .route_name(*route_name)
                .input_type(format!("crate::proto::{request}"))
                .output_type(format!("crate::proto::{response}"))
                .codec_path("tonic::codec::ProstCodec")
                .build(),
        );
    }
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    Builder::new().out_dir(&out_dir).compile(&[service.build()]);

    // tonic_build derives Rust names from the route name, which gives
    // `GRPCInferenceServiceServer` in a module `g_r_p_c_inference_service_server`.
    // Rename the Rust items to Rust's casing; the routes keep the protocol's.
    let generated = out_dir.join(format!("{PACKAGE}.{SERVICE_NAME}.rs"));
    let code = std::fs::read_to_string(&generated).expect("tonic_build wrote the service");
    let route_prefix = format!("{PACKAGE}.{SERVICE_NAME}");
    let placeholder = "\u{0}ROUTE\u{0}";
    let code = code
        .replace(&route_prefix, placeholder)
        .replace("g_r_p_c_inference_service", "grpc_inference_service")
        .replace(SERVICE_NAME, "GrpcInferenceService")
        .replace(placeholder, &route_prefix);
    std::fs::write(out_dir.join("inference_service.rs"), code).expect("OUT_DIR is writable");
}
