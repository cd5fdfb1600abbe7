// kha itself generates nothing; this build script exists so `protoc-bin-vendored` is a
// build-dependency that cargo downloads before etcd-client's build script asks for protoc
// (through scripts/protoc, wired in .cargo/config.toml).
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
}
