'use strict';
// The compiled addon; loading fails (and vnetd uses node:crypto) when it was not built.
module.exports = require('./build/Release/vnetd_aead.node');
