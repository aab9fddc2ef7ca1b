//! `wharf watch`: file watching and the reconcile loop. Not built yet (after issue 6).
