/* The parts of sm-crypto 0.3.13 (CommonJS, src/) the SDK uses. */
declare module "sm-crypto/src/sm2/index.js" {
  const sm2: {
    /** cipherMode 1 = C1C3C2; returns hex, C1 without the 04 prefix. */
    doEncrypt(msg: number[] | string, publicKey: string, cipherMode?: 0 | 1): string;
  };
  export = sm2;
}
declare module "sm-crypto/src/sm3/index.js" {
  /** SM3 digest (hex); with `key`, HMAC-SM3. */
  function sm3(input: number[] | string, options?: { key: number[] | string }): string;
  export = sm3;
}
declare module "sm-crypto/src/sm4/index.js" {
  interface Sm4Options {
    mode?: "cbc" | "ecb";
    iv?: string;
    padding?: "pkcs#7" | "pkcs#5" | "none";
    output: "array";
  }
  const sm4: {
    encrypt(input: number[], key: string, options: Sm4Options): number[];
    decrypt(input: number[], key: string, options: Sm4Options): number[];
  };
  export = sm4;
}
