//! The on-disk record of projects, containers, networks and volumes, with locks and atomic
//! writes. Not built yet: it arrives with the runtime and the reconciler (issues 4 and 6).
