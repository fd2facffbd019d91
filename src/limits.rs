//! Limits the gateway sets, shared by the configuration (which validates against them) and the
//! API client (which obeys them). A leaf.

/// The largest page `ListUDTSTask` is asked for.
pub const LIST_PAGE_LIMIT: usize = 100;
