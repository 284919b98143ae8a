/**
 * `npm run build`: after the type check (`tsc --noEmit -p .` in the npm script), bundles the composition root
 * `functions/index.ts` with everything it imports into one CommonJS file, and lays out `dist/` as the complete
 * Azure deployment package (azure.yaml deploys `dist/`):
 *
 *   dist/index.js       the app; only `@azure/functions-core` stays external (the Node.js worker provides it)
 *   dist/telemetry-sdk.js  the OpenTelemetry SDK, required by index.js only when telemetry is configured
 *   dist/host.json      copied from the project root
 *   dist/package.json   `main: index.js`, no dependencies: nothing to install in Azure
 *
 * `@azure/functions` is bundled too: the worker does not provide it, so leaving it external would mean shipping
 * node_modules (or a remote build) for one library; bundled, the package is three files and needs no install.
 * The local host (`dev/host`) keeps loading `functions/index.ts`; the bundle is only for Azure and the tests.
 */
import { copyFileSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { type BuildOptions, build, type Metafile, type Plugin } from 'esbuild';

export const PROJECT_ROOT = path.resolve(__dirname, '..');
export const DEFAULT_OUTDIR = path.join(PROJECT_ROOT, 'dist');
export const APP_ENTRY = path.join(PROJECT_ROOT, 'functions', 'index.ts');

/** Provided by the Azure Functions Node.js worker at run time; never bundled. */
export const EXTERNALS = ['@azure/functions-core'];

/**
 * Dual packages resolve to their ESM builds (our sources `import` them), which esbuild can tree-shake: when we
 * measured, forcing their CommonJS builds instead made the bundle 18% larger and its load about 25% slower.
 * (A package both imported by us and required by a CommonJS dependency is bundled twice; for the Azure SDK's
 * core-client and core-tracing that costs a few KiB.) ESM code may read `import.meta.url`, which a CommonJS
 * bundle lacks (@azure/storage-common calls `createRequire(import.meta.url)` while loading): it becomes the
 * bundle's own file URL.
 */
const IMPORT_META_URL = '__bundle_import_meta_url';

/**
 * The OpenTelemetry SDK and exporters (lib/telemetry/sdk.ts, about 3 MiB bundled) are a file of their own beside
 * index.js, required only when telemetry is configured: inside index.js they would cost every cold start.
 */
export const TELEMETRY_SDK = {
  entry: path.join(PROJECT_ROOT, 'lib', 'telemetry', 'sdk.ts'),
  file: 'telemetry-sdk.js',
};
const telemetrySdkApart: Plugin = {
  name: 'telemetry-sdk-apart',
  setup(b) {
    b.onResolve({ filter: /^\.\/sdk$/ }, (args) =>
      path.join(args.resolveDir, 'sdk.ts') === TELEMETRY_SDK.entry
        ? { path: `./${TELEMETRY_SDK.file}`, external: true }
        : undefined,
    );
  },
};

export const BUNDLE_OPTIONS: BuildOptions = {
  entryPoints: [APP_ENTRY],
  bundle: true,
  platform: 'node',
  // Azure runs Node 22; Node 20 is what we develop and test on.
  target: 'node20',
  format: 'cjs',
  external: EXTERNALS,
  // Smaller is faster to parse on a cold start; names are kept for readable stack traces.
  minifySyntax: true,
  minifyWhitespace: true,
  keepNames: true,
  sourcemap: 'linked',
  sourcesContent: false,
  legalComments: 'linked',
  logLevel: 'warning',
  metafile: true,
  banner: { js: `var ${IMPORT_META_URL} = require('node:url').pathToFileURL(__filename).href;` },
  define: { 'import.meta.url': IMPORT_META_URL },
  plugins: [telemetrySdkApart],
};

export interface BundleResult {
  outdir: string;
  file: string;
  bytes: number;
  metafile: Metafile;
}

/** Bundles the app into `outdir` (default `dist/`) and writes the deployment package around it. */
export async function buildBundle(outdir: string = DEFAULT_OUTDIR): Promise<BundleResult> {
  rmSync(outdir, { recursive: true, force: true });
  mkdirSync(outdir, { recursive: true });
  const file = path.join(outdir, 'index.js');
  const result = await build({ ...BUNDLE_OPTIONS, outfile: file });
  if (!result.metafile) throw new Error('esbuild returned no metafile');
  await build({
    ...BUNDLE_OPTIONS,
    entryPoints: [TELEMETRY_SDK.entry],
    outfile: path.join(outdir, TELEMETRY_SDK.file),
    plugins: [],
    metafile: false,
  });

  const root = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')) as {
    name: string;
    version: string;
    description?: string;
  };
  const deployPackage = {
    name: root.name,
    version: root.version,
    description: root.description,
    private: true,
    main: 'index.js',
  };
  writeFileSync(path.join(outdir, 'package.json'), `${JSON.stringify(deployPackage, null, 2)}\n`);
  copyFileSync(path.join(PROJECT_ROOT, 'host.json'), path.join(outdir, 'host.json'));
  return { outdir, file, bytes: statSync(file).size, metafile: result.metafile };
}

/** The largest packages in the bundle, by bytes of output (for the build summary). */
export function largestPackages(metafile: Metafile, count = 6): [string, number][] {
  const sizes = new Map<string, number>();
  for (const output of Object.values(metafile.outputs)) {
    for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) {
      const match = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(input);
      const name = match?.[1] ?? '(our code)';
      sizes.set(name, (sizes.get(name) ?? 0) + bytesInOutput);
    }
  }
  return [...sizes.entries()].sort((a, b) => b[1] - a[1]).slice(0, count);
}

const kib = (bytes: number) => `${(bytes / 1024).toFixed(0)} KiB`;

async function main() {
  const started = performance.now();
  const bundle = await buildBundle();
  const ms = performance.now() - started;
  const relative = path.relative(PROJECT_ROOT, bundle.file);
  console.log(
    `Bundled ${relative}: ${kib(bundle.bytes)} in ${ms.toFixed(0)} ms (external: ${EXTERNALS.join(', ')})`,
  );
  console.log(
    `  largest: ${largestPackages(bundle.metafile)
      .map(([name, bytes]) => `${name} ${kib(bytes)}`)
      .join(', ')}`,
  );
  console.log(
    `  deploy package: ${path.relative(PROJECT_ROOT, bundle.outdir)}/ (index.js, ${TELEMETRY_SDK.file}, host.json, package.json)`,
  );
}

if (typeof require !== 'undefined' && require.main === module) {
  main().catch((error) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  });
}
