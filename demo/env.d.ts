// Vite's module types for the demo (?raw, ?url, import.meta.glob, CSS imports).
/// <reference types="vite/client" />
