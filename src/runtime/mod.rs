//! wharf's own container runtime (namespaces, overlayfs, cgroups, supervisors).
//! Not built yet: it arrives with issue 4. The only module, with `network`, allowed `unsafe`.
