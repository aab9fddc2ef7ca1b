//! The OCI image store (blobs, layer unpacking, registry pulls, tarball loads). Not built
//! yet: issue 3.
