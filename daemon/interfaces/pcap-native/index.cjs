'use strict';
// The compiled addon; loading fails (and vnetd says pcap is not installed) when it was not built.
module.exports = require('./build/Release/vnetd_pcap.node');
