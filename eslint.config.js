import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", "coverage/"] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      "@typescript-eslint/restrict-template-expressions": ["error", { allowNumber: true }],
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      // @kubernetes/client-node models are classes with only public fields; its own docs pass
      // plain object literals for them, which is sound.
      "@typescript-eslint/no-unsafe-class-instance-assignment": "off",
    },
  },
  // Who may import what (devkit/README.md): production code never imports the dev kit or the
  // tests, and neither the dev kit nor the scripts under hack/ (npm start) import the tests.
  {
    files: ["src/**/*.ts"],
    // Unit tests beside the code are tests: they may use the dev kit.
    ignores: ["src/**/*.test.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              regex: "^(\\.\\./)+(test|devkit)(/|$)",
              message: "src/ must not import test/ or devkit/ (they are not part of the operator).",
            },
          ],
        },
      ],
    },
  },
  {
    files: ["hack/**/*.ts", "devkit/**/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              regex: "^(\\.\\./)+test(/|$)",
              message: "hack/ and devkit/ must not import test/ (npm start must not depend on the tests).",
            },
          ],
        },
      ],
    },
  },
  {
    files: ["**/*.js"],
    ...tseslint.configs.disableTypeChecked,
  },
);
