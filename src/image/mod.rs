//! The OCI image store: image references, content-addressed blobs, layer unpacking, registry
//! pulls and tarball loads (issue 3). Built so far: [`reference`], Docker-compatible image
//! reference parsing and normalization.

pub mod reference;
