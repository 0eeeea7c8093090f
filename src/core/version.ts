// niftyc's version: part of every cache key, so a new release never reuses
// records whose meaning may have changed.
export const NIFTYC_VERSION = "0.1.0";
