//! Black-box tests of Souk live in `api/` (one test binary); this library
//! target is empty so the package builds the hostile test components
//! (`build.rs`) and hosts the suite.
