// The console is served by `sov serve` at /console/ and built into the binary from dist/.
import { defineConfig } from "vite";

export default defineConfig({
  base: "/console/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    // One small app: no need to split it; no source maps in the binary.
    sourcemap: false,
    target: "es2022",
  },
});
