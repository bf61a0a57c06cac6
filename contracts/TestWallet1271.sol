// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// A minimal EIP-1271 contract wallet, for tests only: a signature is the wallet's when its
/// ECDSA signer is the wallet's owner. Lets the gateway's sign-in be tested with a contract
/// wallet on anvil. Never deploy it anywhere that matters.
contract TestWallet1271 {
    bytes4 internal constant MAGIC_VALUE = 0x1626ba7e;
    bytes4 internal constant INVALID = 0xffffffff;

    address public immutable owner;

    constructor(address owner_) {
        owner = owner_;
    }

    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4) {
        if (signature.length != 65) {
            return INVALID;
        }
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        address signer = ecrecover(hash, v, r, s);
        return signer != address(0) && signer == owner ? MAGIC_VALUE : INVALID;
    }
}
