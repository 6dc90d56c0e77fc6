/**
 * Typed IP addresses and CIDR prefixes, parsed strictly into bytes once at the edge.
 *
 * @module
 */

export * from "./address.ts";
export * from "./cidr.ts";
