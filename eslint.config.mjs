// Lint: the compiler does most of it (strict tsconfig); ESLint adds typescript-eslint's
// strictTypeChecked set with the promise rules a plugin-server plugin cannot live without, keeps
// decisions free of I/O and shipped code away from the dev tools. Scripts are linted too.
import js from '@eslint/js'
import globals from 'globals'
import tseslint from 'typescript-eslint'

const IO_MODULES = [
  'kong-pdk',
  'kong-pdk/*',
  'ioredis',
  'node:fs',
  'node:net',
  'node:http',
  'node:child_process',
  'fs',
  'net',
  'http',
  'child_process',
]

export default tseslint.config(
  {
    ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'spec/emulator/fixtures/**'],
  },
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // Numbers and booleans read fine in messages; objects and undefined still do not pass.
      '@typescript-eslint/restrict-template-expressions': [
        'error',
        { allowNumber: true, allowBoolean: true },
      ],
      // `(x) => void-call()` is the usual callback shape (event handlers, promise executors).
      '@typescript-eslint/no-confusing-void-expression': ['error', { ignoreArrowShorthand: true }],
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': [
        'error',
        { considerDefaultExhaustiveForUnions: true },
      ],
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
    },
  },
  {
    // What ships (plugins, the plugin-server command, the CLI) never reaches into test or demo
    // code: the emulator, the bench and the specs are dev-only.
    files: ['plugins/**', 'pluginserver/**', 'cli/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/emulator/**', '**/emulator', '**/spec/**', '**/bench/**'],
              message: 'shipped code must not import the emulator, the bench or the specs',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['plugins/**', 'pluginserver/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/emulator/**', '**/emulator', '**/spec/**', '**/bench/**', '**/cli/**'],
              message: 'plugins never import the CLI, the emulator, the bench or the specs',
            },
          ],
        },
      ],
    },
  },
  {
    // Decisions are pure: no PDK, no Redis, no Node I/O (house style §4.8).
    files: [
      'plugins/*/core.ts',
      'plugins/*/schema.ts',
      'plugins/consumer-jwt/assertion.ts',
      'plugins/shared/token/**',
      'plugins/shared/scopes/**',
      'plugins/shared/schema/**',
      'plugins/shared/errors.ts',
      'plugins/shared/json.ts',
      'plugins/shared/reserved-headers.ts',
      'plugins/shared/gateway-assertion.ts',
      'plugins/shared/gateway-assertion-keys.ts',
      'plugins/shared/pdk/respond.ts',
      'plugins/shared/revocation/keys.ts',
      'plugins/shared/revocation/absence-cache.ts',
      'plugins/shared/revocation/circuit-breaker.ts',
      'plugins/shared/revocation/revocation-store.ts',
    ],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: IO_MODULES, message: 'core and schema files stay free of I/O' },
            {
              group: ['**/emulator/**', '**/emulator', '**/spec/**', '**/bench/**', '**/cli/**'],
              message: 'plugins never import the CLI, the emulator, the bench or the specs',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['spec/**'],
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/require-await': 'off',
      // Specs clean up in afterAll/afterEach with `x?.stop()` on variables typed as assigned by
      // beforeAll; they are undefined when beforeAll failed, so the check is needed. Specs also
      // poll flags another async task flips (`while (!stop)`), which TypeScript cannot see.
      '@typescript-eslint/no-unnecessary-condition': 'off',
    },
  },
  {
    // Scripts and config files (plain JavaScript, outside the TypeScript project).
    files: ['**/*.mjs', '**/*.cjs', '**/*.js'],
    languageOptions: {
      ...tseslint.configs.disableTypeChecked.languageOptions,
      globals: globals.node,
      sourceType: 'module',
    },
    rules: {
      ...js.configs.recommended.rules,
      ...tseslint.configs.disableTypeChecked.rules,
      // @typescript-eslint/no-unused-vars (above, with the `_` convention) reports these already.
      'no-unused-vars': 'off',
    },
  },
  {
    files: ['**/*.cjs', 'jest.config.js'],
    languageOptions: { sourceType: 'commonjs' },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
)
