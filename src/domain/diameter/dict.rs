//! The AVPs this server reads or writes (RFC 6733 base, TS 29.272 S6a/S13,
//! TS 29.229 Cx, TS 29.273 SWx and the 3GPP AVPs they carry): code, vendor, whether they are sent with
//! the M bit, and their type. An AVP not here is unknown: ignored, unless
//! it carries the M bit (then the request is answered 5001).

/// The 3GPP vendor id.
pub const TGPP: u32 = 10415;

/// How an AVP's data is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Octets,
    Utf8,
    /// DiameterIdentity.
    Ident,
    U32,
    U64,
    I32,
    Enum,
    /// NTP seconds.
    Time,
    Address,
    Grouped,
}

/// One AVP's definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Def {
    pub code: u32,
    /// 0: none (no V bit).
    pub vendor: u32,
    /// Sent with the M bit.
    pub mandatory: bool,
    pub kind: Kind,
    pub name: &'static str,
}

impl Def {
    pub const fn new(
        code: u32,
        vendor: u32,
        mandatory: bool,
        kind: Kind,
        name: &'static str,
    ) -> Def {
        Def {
            code,
            vendor,
            mandatory,
            kind,
            name,
        }
    }
}

/// The definition of AVP `code` of `vendor`, if known.
pub fn lookup(code: u32, vendor: u32) -> Option<&'static Def> {
    ALL.binary_search_by(|d| (d.vendor, d.code).cmp(&(vendor, code)))
        .ok()
        .and_then(|i| ALL.get(i))
}

/// Every AVP by name.
pub mod avp {
    use super::{Def, Kind, TGPP};

    pub const USER_NAME: Def = Def::new(1, 0, true, Kind::Utf8, "User-Name");
    pub const CLASS: Def = Def::new(25, 0, true, Kind::Octets, "Class");
    pub const SESSION_TIMEOUT: Def = Def::new(27, 0, true, Kind::U32, "Session-Timeout");
    pub const PROXY_STATE: Def = Def::new(33, 0, true, Kind::Octets, "Proxy-State");
    pub const EVENT_TIMESTAMP: Def = Def::new(55, 0, true, Kind::Time, "Event-Timestamp");
    pub const HOST_IP_ADDRESS: Def = Def::new(257, 0, true, Kind::Address, "Host-IP-Address");
    pub const AUTH_APPLICATION_ID: Def = Def::new(258, 0, true, Kind::U32, "Auth-Application-Id");
    pub const ACCT_APPLICATION_ID: Def = Def::new(259, 0, true, Kind::U32, "Acct-Application-Id");
    pub const VENDOR_SPECIFIC_APPLICATION_ID: Def = Def::new(
        260,
        0,
        true,
        Kind::Grouped,
        "Vendor-Specific-Application-Id",
    );
    pub const REDIRECT_HOST_USAGE: Def = Def::new(261, 0, true, Kind::Enum, "Redirect-Host-Usage");
    pub const REDIRECT_MAX_CACHE_TIME: Def =
        Def::new(262, 0, true, Kind::U32, "Redirect-Max-Cache-Time");
    pub const SESSION_ID: Def = Def::new(263, 0, true, Kind::Utf8, "Session-Id");
    pub const ORIGIN_HOST: Def = Def::new(264, 0, true, Kind::Ident, "Origin-Host");
    pub const SUPPORTED_VENDOR_ID: Def = Def::new(265, 0, true, Kind::U32, "Supported-Vendor-Id");
    pub const VENDOR_ID: Def = Def::new(266, 0, true, Kind::U32, "Vendor-Id");
    pub const FIRMWARE_REVISION: Def = Def::new(267, 0, false, Kind::U32, "Firmware-Revision");
    pub const RESULT_CODE: Def = Def::new(268, 0, true, Kind::U32, "Result-Code");
    pub const PRODUCT_NAME: Def = Def::new(269, 0, false, Kind::Utf8, "Product-Name");
    pub const SESSION_BINDING: Def = Def::new(270, 0, true, Kind::U32, "Session-Binding");
    pub const SESSION_SERVER_FAILOVER: Def =
        Def::new(271, 0, true, Kind::Enum, "Session-Server-Failover");
    pub const MULTI_ROUND_TIME_OUT: Def = Def::new(272, 0, true, Kind::U32, "Multi-Round-Time-Out");
    pub const DISCONNECT_CAUSE: Def = Def::new(273, 0, true, Kind::Enum, "Disconnect-Cause");
    pub const AUTH_REQUEST_TYPE: Def = Def::new(274, 0, true, Kind::Enum, "Auth-Request-Type");
    pub const AUTH_GRACE_PERIOD: Def = Def::new(276, 0, true, Kind::U32, "Auth-Grace-Period");
    pub const AUTH_SESSION_STATE: Def = Def::new(277, 0, true, Kind::Enum, "Auth-Session-State");
    pub const ORIGIN_STATE_ID: Def = Def::new(278, 0, true, Kind::U32, "Origin-State-Id");
    pub const FAILED_AVP: Def = Def::new(279, 0, true, Kind::Grouped, "Failed-Avp");
    pub const PROXY_HOST: Def = Def::new(280, 0, true, Kind::Ident, "Proxy-Host");
    pub const ERROR_MESSAGE: Def = Def::new(281, 0, false, Kind::Utf8, "Error-Message");
    pub const ROUTE_RECORD: Def = Def::new(282, 0, true, Kind::Ident, "Route-Record");
    pub const DESTINATION_REALM: Def = Def::new(283, 0, true, Kind::Ident, "Destination-Realm");
    pub const PROXY_INFO: Def = Def::new(284, 0, true, Kind::Grouped, "Proxy-Info");
    pub const RE_AUTH_REQUEST_TYPE: Def =
        Def::new(285, 0, true, Kind::Enum, "Re-Auth-Request-Type");
    pub const AUTHORIZATION_LIFETIME: Def =
        Def::new(291, 0, true, Kind::U32, "Authorization-Lifetime");
    pub const REDIRECT_HOST: Def = Def::new(292, 0, true, Kind::Ident, "Redirect-Host");
    pub const DESTINATION_HOST: Def = Def::new(293, 0, true, Kind::Ident, "Destination-Host");
    pub const ERROR_REPORTING_HOST: Def =
        Def::new(294, 0, false, Kind::Ident, "Error-Reporting-Host");
    pub const TERMINATION_CAUSE: Def = Def::new(295, 0, true, Kind::Enum, "Termination-Cause");
    pub const ORIGIN_REALM: Def = Def::new(296, 0, true, Kind::Ident, "Origin-Realm");
    pub const EXPERIMENTAL_RESULT: Def =
        Def::new(297, 0, true, Kind::Grouped, "Experimental-Result");
    pub const EXPERIMENTAL_RESULT_CODE: Def =
        Def::new(298, 0, true, Kind::U32, "Experimental-Result-Code");
    pub const INBAND_SECURITY_ID: Def = Def::new(299, 0, true, Kind::U32, "Inband-Security-Id");
    pub const MIP_HOME_AGENT_ADDRESS: Def =
        Def::new(334, 0, true, Kind::Address, "MIP-Home-Agent-Address");
    pub const MIP_HOME_AGENT_HOST: Def =
        Def::new(348, 0, true, Kind::Grouped, "MIP-Home-Agent-Host");
    pub const MIP6_AGENT_INFO: Def = Def::new(486, 0, true, Kind::Grouped, "MIP6-Agent-Info");
    pub const SERVICE_SELECTION: Def = Def::new(493, 0, true, Kind::Utf8, "Service-Selection");
    pub const MAX_REQUESTED_BANDWIDTH_DL: Def =
        Def::new(515, TGPP, true, Kind::U32, "Max-Requested-Bandwidth-DL");
    pub const MAX_REQUESTED_BANDWIDTH_UL: Def =
        Def::new(516, TGPP, true, Kind::U32, "Max-Requested-Bandwidth-UL");
    pub const SUPPORTED_FEATURES: Def =
        Def::new(628, TGPP, false, Kind::Grouped, "Supported-Features");
    pub const FEATURE_LIST_ID: Def = Def::new(629, TGPP, false, Kind::U32, "Feature-List-ID");
    pub const FEATURE_LIST: Def = Def::new(630, TGPP, false, Kind::U32, "Feature-List");
    pub const CONFIDENTIALITY_KEY: Def =
        Def::new(625, TGPP, true, Kind::Octets, "Confidentiality-Key");
    pub const INTEGRITY_KEY: Def = Def::new(626, TGPP, true, Kind::Octets, "Integrity-Key");
    pub const MSISDN: Def = Def::new(701, TGPP, true, Kind::Octets, "MSISDN");
    pub const SERVED_PARTY_IP_ADDRESS: Def =
        Def::new(848, TGPP, true, Kind::Address, "Served-Party-IP-Address");
    pub const QOS_CLASS_IDENTIFIER: Def =
        Def::new(1028, TGPP, true, Kind::Enum, "QoS-Class-Identifier");
    pub const RAT_TYPE: Def = Def::new(1032, TGPP, true, Kind::Enum, "RAT-Type");
    pub const ALLOCATION_RETENTION_PRIORITY: Def = Def::new(
        1034,
        TGPP,
        true,
        Kind::Grouped,
        "Allocation-Retention-Priority",
    );
    pub const PRIORITY_LEVEL: Def = Def::new(1046, TGPP, true, Kind::U32, "Priority-Level");
    pub const PRE_EMPTION_CAPABILITY: Def =
        Def::new(1047, TGPP, true, Kind::Enum, "Pre-emption-Capability");
    pub const PRE_EMPTION_VULNERABILITY: Def =
        Def::new(1048, TGPP, true, Kind::Enum, "Pre-emption-Vulnerability");
    pub const SUBSCRIPTION_DATA: Def =
        Def::new(1400, TGPP, true, Kind::Grouped, "Subscription-Data");
    pub const TERMINAL_INFORMATION: Def =
        Def::new(1401, TGPP, true, Kind::Grouped, "Terminal-Information");
    pub const IMEI: Def = Def::new(1402, TGPP, true, Kind::Utf8, "IMEI");
    pub const SOFTWARE_VERSION: Def = Def::new(1403, TGPP, true, Kind::Utf8, "Software-Version");
    pub const QOS_SUBSCRIBED: Def = Def::new(1404, TGPP, true, Kind::Octets, "QoS-Subscribed");
    pub const ULR_FLAGS: Def = Def::new(1405, TGPP, true, Kind::U32, "ULR-Flags");
    pub const ULA_FLAGS: Def = Def::new(1406, TGPP, true, Kind::U32, "ULA-Flags");
    pub const VISITED_PLMN_ID: Def = Def::new(1407, TGPP, true, Kind::Octets, "Visited-PLMN-Id");
    pub const REQUESTED_EUTRAN_AUTHENTICATION_INFO: Def = Def::new(
        1408,
        TGPP,
        true,
        Kind::Grouped,
        "Requested-EUTRAN-Authentication-Info",
    );
    pub const REQUESTED_UTRAN_GERAN_AUTHENTICATION_INFO: Def = Def::new(
        1409,
        TGPP,
        true,
        Kind::Grouped,
        "Requested-UTRAN-GERAN-Authentication-Info",
    );
    pub const NUMBER_OF_REQUESTED_VECTORS: Def =
        Def::new(1410, TGPP, true, Kind::U32, "Number-Of-Requested-Vectors");
    pub const RE_SYNCHRONIZATION_INFO: Def =
        Def::new(1411, TGPP, true, Kind::Octets, "Re-Synchronization-Info");
    pub const IMMEDIATE_RESPONSE_PREFERRED: Def =
        Def::new(1412, TGPP, true, Kind::U32, "Immediate-Response-Preferred");
    pub const AUTHENTICATION_INFO: Def =
        Def::new(1413, TGPP, true, Kind::Grouped, "Authentication-Info");
    pub const E_UTRAN_VECTOR: Def = Def::new(1414, TGPP, true, Kind::Grouped, "E-UTRAN-Vector");
    pub const UTRAN_VECTOR: Def = Def::new(1415, TGPP, true, Kind::Grouped, "UTRAN-Vector");
    pub const GERAN_VECTOR: Def = Def::new(1416, TGPP, true, Kind::Grouped, "GERAN-Vector");
    pub const NETWORK_ACCESS_MODE: Def =
        Def::new(1417, TGPP, true, Kind::Enum, "Network-Access-Mode");
    pub const HPLMN_ODB: Def = Def::new(1418, TGPP, true, Kind::U32, "HPLMN-ODB");
    pub const ITEM_NUMBER: Def = Def::new(1419, TGPP, true, Kind::U32, "Item-Number");
    pub const CANCELLATION_TYPE: Def = Def::new(1420, TGPP, true, Kind::Enum, "Cancellation-Type");
    pub const DSR_FLAGS: Def = Def::new(1421, TGPP, true, Kind::U32, "DSR-Flags");
    pub const DSA_FLAGS: Def = Def::new(1422, TGPP, true, Kind::U32, "DSA-Flags");
    pub const CONTEXT_IDENTIFIER: Def = Def::new(1423, TGPP, true, Kind::U32, "Context-Identifier");
    pub const SUBSCRIBER_STATUS: Def = Def::new(1424, TGPP, true, Kind::Enum, "Subscriber-Status");
    pub const OPERATOR_DETERMINED_BARRING: Def =
        Def::new(1425, TGPP, true, Kind::U32, "Operator-Determined-Barring");
    pub const ACCESS_RESTRICTION_DATA: Def =
        Def::new(1426, TGPP, true, Kind::U32, "Access-Restriction-Data");
    pub const APN_OI_REPLACEMENT: Def =
        Def::new(1427, TGPP, true, Kind::Utf8, "APN-OI-Replacement");
    pub const ALL_APN_CONFIGURATIONS_INCLUDED_INDICATOR: Def = Def::new(
        1428,
        TGPP,
        true,
        Kind::Enum,
        "All-APN-Configurations-Included-Indicator",
    );
    pub const APN_CONFIGURATION_PROFILE: Def =
        Def::new(1429, TGPP, true, Kind::Grouped, "APN-Configuration-Profile");
    pub const APN_CONFIGURATION: Def =
        Def::new(1430, TGPP, true, Kind::Grouped, "APN-Configuration");
    pub const EPS_SUBSCRIBED_QOS_PROFILE: Def = Def::new(
        1431,
        TGPP,
        true,
        Kind::Grouped,
        "EPS-Subscribed-QoS-Profile",
    );
    pub const VPLMN_DYNAMIC_ADDRESS_ALLOWED: Def = Def::new(
        1432,
        TGPP,
        true,
        Kind::Enum,
        "VPLMN-Dynamic-Address-Allowed",
    );
    pub const STN_SR: Def = Def::new(1433, TGPP, true, Kind::Octets, "STN-SR");
    pub const ALERT_REASON: Def = Def::new(1434, TGPP, true, Kind::Enum, "Alert-Reason");
    pub const AMBR: Def = Def::new(1435, TGPP, true, Kind::Grouped, "AMBR");
    pub const CSG_SUBSCRIPTION_DATA: Def =
        Def::new(1436, TGPP, true, Kind::Grouped, "CSG-Subscription-Data");
    pub const CSG_ID: Def = Def::new(1437, TGPP, true, Kind::U32, "CSG-Id");
    pub const PDN_GW_ALLOCATION_TYPE: Def =
        Def::new(1438, TGPP, true, Kind::Enum, "PDN-GW-Allocation-Type");
    pub const EXPIRATION_DATE: Def = Def::new(1439, TGPP, true, Kind::Time, "Expiration-Date");
    pub const RAT_FREQUENCY_SELECTION_PRIORITY_ID: Def = Def::new(
        1440,
        TGPP,
        true,
        Kind::U32,
        "RAT-Frequency-Selection-Priority-ID",
    );
    pub const IDA_FLAGS: Def = Def::new(1441, TGPP, true, Kind::U32, "IDA-Flags");
    pub const PUA_FLAGS: Def = Def::new(1442, TGPP, true, Kind::U32, "PUA-Flags");
    pub const NOR_FLAGS: Def = Def::new(1443, TGPP, true, Kind::U32, "NOR-Flags");
    pub const USER_ID: Def = Def::new(1444, TGPP, false, Kind::Utf8, "User-Id");
    pub const EQUIPMENT_STATUS: Def = Def::new(1445, TGPP, true, Kind::Enum, "Equipment-Status");
    pub const REGIONAL_SUBSCRIPTION_ZONE_CODE: Def = Def::new(
        1446,
        TGPP,
        true,
        Kind::Octets,
        "Regional-Subscription-Zone-Code",
    );
    pub const RAND: Def = Def::new(1447, TGPP, true, Kind::Octets, "RAND");
    pub const XRES: Def = Def::new(1448, TGPP, true, Kind::Octets, "XRES");
    pub const AUTN: Def = Def::new(1449, TGPP, true, Kind::Octets, "AUTN");
    pub const KASME: Def = Def::new(1450, TGPP, true, Kind::Octets, "KASME");
    pub const TRACE_COLLECTION_ENTITY: Def =
        Def::new(1452, TGPP, true, Kind::Address, "Trace-Collection-Entity");
    pub const KC: Def = Def::new(1453, TGPP, true, Kind::Octets, "Kc");
    pub const SRES: Def = Def::new(1454, TGPP, true, Kind::Octets, "SRES");
    pub const PDN_TYPE: Def = Def::new(1456, TGPP, true, Kind::Enum, "PDN-Type");
    pub const ROAMING_RESTRICTED_DUE_TO_UNSUPPORTED_FEATURE: Def = Def::new(
        1457,
        TGPP,
        true,
        Kind::Enum,
        "Roaming-Restricted-Due-To-Unsupported-Feature",
    );
    pub const TRACE_DATA: Def = Def::new(1458, TGPP, true, Kind::Grouped, "Trace-Data");
    pub const TRACE_REFERENCE: Def = Def::new(1459, TGPP, true, Kind::Octets, "Trace-Reference");
    pub const TRACE_DEPTH: Def = Def::new(1462, TGPP, true, Kind::Enum, "Trace-Depth");
    pub const TRACE_NE_TYPE_LIST: Def =
        Def::new(1463, TGPP, true, Kind::Octets, "Trace-NE-Type-List");
    pub const TRACE_INTERFACE_LIST: Def =
        Def::new(1464, TGPP, true, Kind::Octets, "Trace-Interface-List");
    pub const TRACE_EVENT_LIST: Def = Def::new(1465, TGPP, true, Kind::Octets, "Trace-Event-List");
    pub const OMC_ID: Def = Def::new(1466, TGPP, true, Kind::Octets, "OMC-Id");
    pub const GPRS_SUBSCRIPTION_DATA: Def =
        Def::new(1467, TGPP, true, Kind::Grouped, "GPRS-Subscription-Data");
    pub const COMPLETE_DATA_LIST_INCLUDED_INDICATOR: Def = Def::new(
        1468,
        TGPP,
        true,
        Kind::Enum,
        "Complete-Data-List-Included-Indicator",
    );
    pub const PDP_CONTEXT: Def = Def::new(1469, TGPP, true, Kind::Grouped, "PDP-Context");
    pub const PDP_TYPE: Def = Def::new(1470, TGPP, true, Kind::Octets, "PDP-Type");
    pub const TGPP2_MEID: Def = Def::new(1471, TGPP, true, Kind::Octets, "3GPP2-MEID");
    pub const SPECIFIC_APN_INFO: Def =
        Def::new(1472, TGPP, true, Kind::Grouped, "Specific-APN-Info");
    pub const LCS_INFO: Def = Def::new(1473, TGPP, true, Kind::Grouped, "LCS-Info");
    pub const GMLC_NUMBER: Def = Def::new(1474, TGPP, true, Kind::Octets, "GMLC-Number");
    pub const SS_CODE: Def = Def::new(1476, TGPP, true, Kind::Octets, "SS-Code");
    pub const SS_STATUS: Def = Def::new(1477, TGPP, true, Kind::Octets, "SS-Status");
    pub const NOTIFICATION_TO_UE_USER: Def =
        Def::new(1478, TGPP, true, Kind::Enum, "Notification-To-UE-User");
    pub const EXTERNAL_CLIENT: Def = Def::new(1479, TGPP, true, Kind::Grouped, "External-Client");
    pub const CLIENT_IDENTITY: Def = Def::new(1480, TGPP, true, Kind::Octets, "Client-Identity");
    pub const GMLC_RESTRICTION: Def = Def::new(1481, TGPP, true, Kind::Enum, "GMLC-Restriction");
    pub const PLMN_CLIENT: Def = Def::new(1482, TGPP, true, Kind::Enum, "PLMN-Client");
    pub const SERVICE_TYPE: Def = Def::new(1483, TGPP, true, Kind::Grouped, "Service-Type");
    pub const SERVICETYPEIDENTITY: Def =
        Def::new(1484, TGPP, true, Kind::U32, "ServiceTypeIdentity");
    pub const MO_LR: Def = Def::new(1485, TGPP, true, Kind::Grouped, "MO-LR");
    pub const TELESERVICE_LIST: Def = Def::new(1486, TGPP, true, Kind::Grouped, "Teleservice-List");
    pub const TS_CODE: Def = Def::new(1487, TGPP, true, Kind::Octets, "TS-Code");
    pub const CALL_BARRING_INFO: Def =
        Def::new(1488, TGPP, true, Kind::Grouped, "Call-Barring-Info");
    pub const SGSN_NUMBER: Def = Def::new(1489, TGPP, true, Kind::Octets, "SGSN-Number");
    pub const IDR_FLAGS: Def = Def::new(1490, TGPP, true, Kind::U32, "IDR-Flags");
    pub const ICS_INDICATOR: Def = Def::new(1491, TGPP, false, Kind::Enum, "ICS-Indicator");
    pub const IMS_VOICE_OVER_PS_SESSIONS_SUPPORTED: Def = Def::new(
        1492,
        TGPP,
        false,
        Kind::Enum,
        "IMS-Voice-Over-PS-Sessions-Supported",
    );
    pub const HOMOGENEOUS_SUPPORT_OF_IMS_VOICE_OVER_PS_SESSIONS: Def = Def::new(
        1493,
        TGPP,
        false,
        Kind::Enum,
        "Homogeneous-Support-of-IMS-Voice-Over-PS-Sessions",
    );
    pub const LAST_UE_ACTIVITY_TIME: Def =
        Def::new(1494, TGPP, false, Kind::Time, "Last-UE-Activity-Time");
    pub const EPS_USER_STATE: Def = Def::new(1495, TGPP, false, Kind::Grouped, "EPS-User-State");
    pub const EPS_LOCATION_INFORMATION: Def =
        Def::new(1496, TGPP, false, Kind::Grouped, "EPS-Location-Information");
    pub const MME_USER_STATE: Def = Def::new(1497, TGPP, false, Kind::Grouped, "MME-User-State");
    pub const SGSN_USER_STATE: Def = Def::new(1498, TGPP, false, Kind::Grouped, "SGSN-User-State");
    pub const USER_STATE: Def = Def::new(1499, TGPP, false, Kind::Enum, "User-State");
    pub const MME_LOCATION_INFORMATION: Def =
        Def::new(1600, TGPP, false, Kind::Grouped, "MME-Location-Information");
    pub const SGSN_LOCATION_INFORMATION: Def = Def::new(
        1601,
        TGPP,
        false,
        Kind::Grouped,
        "SGSN-Location-Information",
    );
    pub const E_UTRAN_CELL_GLOBAL_IDENTITY: Def = Def::new(
        1602,
        TGPP,
        false,
        Kind::Octets,
        "E-UTRAN-Cell-Global-Identity",
    );
    pub const TRACKING_AREA_IDENTITY: Def =
        Def::new(1603, TGPP, false, Kind::Octets, "Tracking-Area-Identity");
    pub const CELL_GLOBAL_IDENTITY: Def =
        Def::new(1604, TGPP, false, Kind::Octets, "Cell-Global-Identity");
    pub const ROUTING_AREA_IDENTITY: Def =
        Def::new(1605, TGPP, false, Kind::Octets, "Routing-Area-Identity");
    pub const LOCATION_AREA_IDENTITY: Def =
        Def::new(1606, TGPP, false, Kind::Octets, "Location-Area-Identity");
    pub const SERVICE_AREA_IDENTITY: Def =
        Def::new(1607, TGPP, false, Kind::Octets, "Service-Area-Identity");
    pub const GEOGRAPHICAL_INFORMATION: Def =
        Def::new(1608, TGPP, false, Kind::Octets, "Geographical-Information");
    pub const GEODETIC_INFORMATION: Def =
        Def::new(1609, TGPP, false, Kind::Octets, "Geodetic-Information");
    pub const CURRENT_LOCATION_RETRIEVED: Def =
        Def::new(1610, TGPP, false, Kind::Enum, "Current-Location-Retrieved");
    pub const AGE_OF_LOCATION_INFORMATION: Def =
        Def::new(1611, TGPP, false, Kind::U32, "Age-Of-Location-Information");
    pub const ACTIVE_APN: Def = Def::new(1612, TGPP, false, Kind::Grouped, "Active-APN");
    pub const SIPTO_PERMISSION: Def = Def::new(1613, TGPP, false, Kind::Enum, "SIPTO-Permission");
    pub const ERROR_DIAGNOSTIC: Def = Def::new(1614, TGPP, false, Kind::Enum, "Error-Diagnostic");
    pub const UE_SRVCC_CAPABILITY: Def =
        Def::new(1615, TGPP, false, Kind::Enum, "UE-SRVCC-Capability");
    pub const MPS_PRIORITY: Def = Def::new(1616, TGPP, false, Kind::U32, "MPS-Priority");
    pub const VPLMN_LIPA_ALLOWED: Def =
        Def::new(1617, TGPP, false, Kind::Enum, "VPLMN-LIPA-Allowed");
    pub const LIPA_PERMISSION: Def = Def::new(1618, TGPP, false, Kind::Enum, "LIPA-Permission");
    pub const SUBSCRIBED_PERIODIC_RAU_TAU_TIMER: Def = Def::new(
        1619,
        TGPP,
        false,
        Kind::U32,
        "Subscribed-Periodic-RAU-TAU-Timer",
    );
    pub const EXT_PDP_TYPE: Def = Def::new(1620, TGPP, false, Kind::Octets, "Ext-PDP-Type");
    pub const EXT_PDP_ADDRESS: Def = Def::new(1621, TGPP, false, Kind::Address, "Ext-PDP-Address");
    pub const MDT_CONFIGURATION: Def =
        Def::new(1622, TGPP, false, Kind::Grouped, "MDT-Configuration");
    pub const EQUIVALENT_PLMN_LIST: Def =
        Def::new(1637, TGPP, false, Kind::Grouped, "Equivalent-PLMN-List");
    pub const CLR_FLAGS: Def = Def::new(1638, TGPP, false, Kind::U32, "CLR-Flags");
    pub const MME_NUMBER_FOR_MT_SMS: Def =
        Def::new(1645, TGPP, false, Kind::Octets, "MME-Number-for-MT-SMS");
    pub const SMS_REGISTER_REQUEST: Def =
        Def::new(1648, TGPP, false, Kind::Enum, "SMS-Register-Request");
    pub const SUBSCRIPTION_DATA_FLAGS: Def =
        Def::new(1654, TGPP, false, Kind::U32, "Subscription-Data-Flags");
    pub const UE_USAGE_TYPE: Def = Def::new(1680, TGPP, false, Kind::U32, "UE-Usage-Type");
    pub const MIP6_FEATURE_VECTOR: Def = Def::new(124, 0, true, Kind::U64, "MIP6-Feature-Vector");
    pub const VISITED_NETWORK_IDENTIFIER: Def =
        Def::new(600, TGPP, true, Kind::Octets, "Visited-Network-Identifier");
    pub const PUBLIC_IDENTITY: Def = Def::new(601, TGPP, true, Kind::Utf8, "Public-Identity");
    pub const SERVER_NAME: Def = Def::new(602, TGPP, true, Kind::Utf8, "Server-Name");
    pub const SERVER_CAPABILITIES: Def =
        Def::new(603, TGPP, true, Kind::Grouped, "Server-Capabilities");
    pub const MANDATORY_CAPABILITY: Def =
        Def::new(604, TGPP, true, Kind::U32, "Mandatory-Capability");
    pub const OPTIONAL_CAPABILITY: Def =
        Def::new(605, TGPP, true, Kind::U32, "Optional-Capability");
    pub const USER_DATA: Def = Def::new(606, TGPP, true, Kind::Octets, "User-Data");
    pub const SIP_NUMBER_AUTH_ITEMS: Def =
        Def::new(607, TGPP, true, Kind::U32, "SIP-Number-Auth-Items");
    pub const SIP_AUTHENTICATION_SCHEME: Def =
        Def::new(608, TGPP, true, Kind::Utf8, "SIP-Authentication-Scheme");
    pub const SIP_AUTHENTICATE: Def = Def::new(609, TGPP, true, Kind::Octets, "SIP-Authenticate");
    pub const SIP_AUTHORIZATION: Def = Def::new(610, TGPP, true, Kind::Octets, "SIP-Authorization");
    pub const SIP_AUTHENTICATION_CONTEXT: Def =
        Def::new(611, TGPP, true, Kind::Octets, "SIP-Authentication-Context");
    pub const SIP_AUTH_DATA_ITEM: Def =
        Def::new(612, TGPP, true, Kind::Grouped, "SIP-Auth-Data-Item");
    pub const SIP_ITEM_NUMBER: Def = Def::new(613, TGPP, true, Kind::U32, "SIP-Item-Number");
    pub const SERVER_ASSIGNMENT_TYPE: Def =
        Def::new(614, TGPP, true, Kind::Enum, "Server-Assignment-Type");
    pub const DEREGISTRATION_REASON: Def =
        Def::new(615, TGPP, true, Kind::Grouped, "Deregistration-Reason");
    pub const REASON_CODE: Def = Def::new(616, TGPP, true, Kind::Enum, "Reason-Code");
    pub const REASON_INFO: Def = Def::new(617, TGPP, true, Kind::Utf8, "Reason-Info");
    pub const CHARGING_INFORMATION: Def =
        Def::new(618, TGPP, true, Kind::Grouped, "Charging-Information");
    pub const PRIMARY_EVENT_CHARGING_FUNCTION_NAME: Def = Def::new(
        619,
        TGPP,
        true,
        Kind::Octets,
        "Primary-Event-Charging-Function-Name",
    );
    pub const SECONDARY_EVENT_CHARGING_FUNCTION_NAME: Def = Def::new(
        620,
        TGPP,
        true,
        Kind::Octets,
        "Secondary-Event-Charging-Function-Name",
    );
    pub const PRIMARY_CHARGING_COLLECTION_FUNCTION_NAME: Def = Def::new(
        621,
        TGPP,
        true,
        Kind::Octets,
        "Primary-Charging-Collection-Function-Name",
    );
    pub const SECONDARY_CHARGING_COLLECTION_FUNCTION_NAME: Def = Def::new(
        622,
        TGPP,
        true,
        Kind::Octets,
        "Secondary-Charging-Collection-Function-Name",
    );
    pub const USER_AUTHORIZATION_TYPE: Def =
        Def::new(623, TGPP, true, Kind::Enum, "User-Authorization-Type");
    pub const USER_DATA_ALREADY_AVAILABLE: Def =
        Def::new(624, TGPP, true, Kind::Enum, "User-Data-Already-Available");
    pub const SUPPORTED_APPLICATIONS: Def =
        Def::new(631, TGPP, true, Kind::Grouped, "Supported-Applications");
    pub const ASSOCIATED_IDENTITIES: Def =
        Def::new(632, TGPP, true, Kind::Grouped, "Associated-Identities");
    pub const ORIGINATING_REQUEST: Def =
        Def::new(633, TGPP, true, Kind::Enum, "Originating-Request");
    pub const WILDCARDED_PSI: Def = Def::new(634, TGPP, true, Kind::Utf8, "Wildcarded-PSI");
    pub const SIP_DIGEST_AUTHENTICATE: Def =
        Def::new(635, TGPP, false, Kind::Grouped, "SIP-Digest-Authenticate");
    pub const WILDCARDED_IMPU: Def = Def::new(636, TGPP, false, Kind::Utf8, "Wildcarded-IMPU");
    pub const UAR_FLAGS: Def = Def::new(637, TGPP, false, Kind::U32, "UAR-Flags");
    pub const LOOSE_ROUTE_INDICATION: Def =
        Def::new(638, TGPP, false, Kind::Enum, "Loose-Route-Indication");
    pub const SCSCF_RESTORATION_INFO: Def =
        Def::new(639, TGPP, false, Kind::Grouped, "SCSCF-Restoration-Info");
    pub const PATH: Def = Def::new(640, TGPP, false, Kind::Octets, "Path");
    pub const CONTACT: Def = Def::new(641, TGPP, false, Kind::Octets, "Contact");
    pub const SUBSCRIPTION_INFO: Def =
        Def::new(642, TGPP, false, Kind::Grouped, "Subscription-Info");
    pub const CALL_ID_SIP_HEADER: Def =
        Def::new(643, TGPP, false, Kind::Octets, "Call-ID-SIP-Header");
    pub const FROM_SIP_HEADER: Def = Def::new(644, TGPP, false, Kind::Octets, "From-SIP-Header");
    pub const TO_SIP_HEADER: Def = Def::new(645, TGPP, false, Kind::Octets, "To-SIP-Header");
    pub const RECORD_ROUTE: Def = Def::new(646, TGPP, false, Kind::Octets, "Record-Route");
    pub const ASSOCIATED_REGISTERED_IDENTITIES: Def = Def::new(
        647,
        TGPP,
        false,
        Kind::Grouped,
        "Associated-Registered-Identities",
    );
    pub const MULTIPLE_REGISTRATION_INDICATION: Def = Def::new(
        648,
        TGPP,
        false,
        Kind::Enum,
        "Multiple-Registration-Indication",
    );
    pub const RESTORATION_INFO: Def = Def::new(649, TGPP, false, Kind::Grouped, "Restoration-Info");
    pub const SESSION_PRIORITY: Def = Def::new(650, TGPP, false, Kind::Enum, "Session-Priority");
    pub const IDENTITY_WITH_EMERGENCY_REGISTRATION: Def = Def::new(
        651,
        TGPP,
        false,
        Kind::Grouped,
        "Identity-with-Emergency-Registration",
    );
    pub const PRIVILEDGED_SENDER_INDICATION: Def = Def::new(
        652,
        TGPP,
        false,
        Kind::Enum,
        "Priviledged-Sender-Indication",
    );
    pub const LIA_FLAGS: Def = Def::new(653, TGPP, true, Kind::U32, "LIA-Flags");
    pub const INITIAL_CSEQ_SEQUENCE_NUMBER: Def =
        Def::new(654, TGPP, true, Kind::U32, "Initial-CSeq-Sequence-Number");
    pub const SAR_FLAGS: Def = Def::new(655, TGPP, true, Kind::U32, "SAR-Flags");
    pub const NON_TGPP_USER_DATA: Def =
        Def::new(1500, TGPP, true, Kind::Grouped, "Non-3GPP-User-Data");
    pub const NON_TGPP_IP_ACCESS: Def =
        Def::new(1501, TGPP, false, Kind::Enum, "Non-3GPP-IP-Access");
    pub const NON_TGPP_IP_ACCESS_APN: Def =
        Def::new(1502, TGPP, false, Kind::Enum, "Non-3GPP-IP-Access-APN");
    pub const AN_TRUSTED: Def = Def::new(1503, TGPP, false, Kind::Enum, "AN-Trusted");
    pub const ANID: Def = Def::new(1504, TGPP, true, Kind::Utf8, "ANID");
    pub const TRACE_INFO: Def = Def::new(1505, TGPP, false, Kind::Grouped, "Trace-Info");
    pub const MIP_FA_RK: Def = Def::new(1506, TGPP, true, Kind::Octets, "MIP-FA-RK");
    pub const MIP_FA_RK_SPI: Def = Def::new(1507, TGPP, true, Kind::U32, "MIP-FA-RK-SPI");
    pub const PPR_FLAGS: Def = Def::new(1508, TGPP, false, Kind::U32, "PPR-Flags");
    pub const WLAN_IDENTIFIER: Def = Def::new(1509, TGPP, false, Kind::Grouped, "WLAN-Identifier");
    pub const TWAN_ACCESS_INFO: Def =
        Def::new(1510, TGPP, false, Kind::Grouped, "TWAN-Access-Info");
    pub const ACCESS_AUTHORIZATION_FLAGS: Def =
        Def::new(1511, TGPP, false, Kind::U32, "Access-Authorization-Flags");
    pub const TWAN_DEFAULT_APN_CONTEXT_ID: Def =
        Def::new(1512, TGPP, false, Kind::U32, "TWAN-Default-APN-Context-Id");
    pub const FULL_NETWORK_NAME: Def =
        Def::new(1516, TGPP, false, Kind::Octets, "Full-Network-Name");
    pub const SHORT_NETWORK_NAME: Def =
        Def::new(1517, TGPP, false, Kind::Octets, "Short-Network-Name");
    pub const AAA_FAILURE_INDICATION: Def =
        Def::new(1518, TGPP, false, Kind::U32, "AAA-Failure-Indication");
    pub const TRANSPORT_ACCESS_TYPE: Def =
        Def::new(1519, TGPP, false, Kind::Enum, "Transport-Access-Type");
    pub const SSID: Def = Def::new(1524, TGPP, true, Kind::Utf8, "SSID");
    pub const HESSID: Def = Def::new(1525, TGPP, true, Kind::Utf8, "HESSID");
    pub const ACCESS_NETWORK_INFO: Def =
        Def::new(1526, TGPP, false, Kind::Grouped, "Access-Network-Info");
}

/// Every definition, sorted by (vendor, code) for [`lookup`].
static ALL: &[Def] = &[
    avp::USER_NAME,
    avp::CLASS,
    avp::SESSION_TIMEOUT,
    avp::PROXY_STATE,
    avp::EVENT_TIMESTAMP,
    avp::MIP6_FEATURE_VECTOR,
    avp::HOST_IP_ADDRESS,
    avp::AUTH_APPLICATION_ID,
    avp::ACCT_APPLICATION_ID,
    avp::VENDOR_SPECIFIC_APPLICATION_ID,
    avp::REDIRECT_HOST_USAGE,
    avp::REDIRECT_MAX_CACHE_TIME,
    avp::SESSION_ID,
    avp::ORIGIN_HOST,
    avp::SUPPORTED_VENDOR_ID,
    avp::VENDOR_ID,
    avp::FIRMWARE_REVISION,
    avp::RESULT_CODE,
    avp::PRODUCT_NAME,
    avp::SESSION_BINDING,
    avp::SESSION_SERVER_FAILOVER,
    avp::MULTI_ROUND_TIME_OUT,
    avp::DISCONNECT_CAUSE,
    avp::AUTH_REQUEST_TYPE,
    avp::AUTH_GRACE_PERIOD,
    avp::AUTH_SESSION_STATE,
    avp::ORIGIN_STATE_ID,
    avp::FAILED_AVP,
    avp::PROXY_HOST,
    avp::ERROR_MESSAGE,
    avp::ROUTE_RECORD,
    avp::DESTINATION_REALM,
    avp::PROXY_INFO,
    avp::RE_AUTH_REQUEST_TYPE,
    avp::AUTHORIZATION_LIFETIME,
    avp::REDIRECT_HOST,
    avp::DESTINATION_HOST,
    avp::ERROR_REPORTING_HOST,
    avp::TERMINATION_CAUSE,
    avp::ORIGIN_REALM,
    avp::EXPERIMENTAL_RESULT,
    avp::EXPERIMENTAL_RESULT_CODE,
    avp::INBAND_SECURITY_ID,
    avp::MIP_HOME_AGENT_ADDRESS,
    avp::MIP_HOME_AGENT_HOST,
    avp::MIP6_AGENT_INFO,
    avp::SERVICE_SELECTION,
    avp::MAX_REQUESTED_BANDWIDTH_DL,
    avp::MAX_REQUESTED_BANDWIDTH_UL,
    avp::VISITED_NETWORK_IDENTIFIER,
    avp::PUBLIC_IDENTITY,
    avp::SERVER_NAME,
    avp::SERVER_CAPABILITIES,
    avp::MANDATORY_CAPABILITY,
    avp::OPTIONAL_CAPABILITY,
    avp::USER_DATA,
    avp::SIP_NUMBER_AUTH_ITEMS,
    avp::SIP_AUTHENTICATION_SCHEME,
    avp::SIP_AUTHENTICATE,
    avp::SIP_AUTHORIZATION,
    avp::SIP_AUTHENTICATION_CONTEXT,
    avp::SIP_AUTH_DATA_ITEM,
    avp::SIP_ITEM_NUMBER,
    avp::SERVER_ASSIGNMENT_TYPE,
    avp::DEREGISTRATION_REASON,
    avp::REASON_CODE,
    avp::REASON_INFO,
    avp::CHARGING_INFORMATION,
    avp::PRIMARY_EVENT_CHARGING_FUNCTION_NAME,
    avp::SECONDARY_EVENT_CHARGING_FUNCTION_NAME,
    avp::PRIMARY_CHARGING_COLLECTION_FUNCTION_NAME,
    avp::SECONDARY_CHARGING_COLLECTION_FUNCTION_NAME,
    avp::USER_AUTHORIZATION_TYPE,
    avp::USER_DATA_ALREADY_AVAILABLE,
    avp::CONFIDENTIALITY_KEY,
    avp::INTEGRITY_KEY,
    avp::SUPPORTED_FEATURES,
    avp::FEATURE_LIST_ID,
    avp::FEATURE_LIST,
    avp::SUPPORTED_APPLICATIONS,
    avp::ASSOCIATED_IDENTITIES,
    avp::ORIGINATING_REQUEST,
    avp::WILDCARDED_PSI,
    avp::SIP_DIGEST_AUTHENTICATE,
    avp::WILDCARDED_IMPU,
    avp::UAR_FLAGS,
    avp::LOOSE_ROUTE_INDICATION,
    avp::SCSCF_RESTORATION_INFO,
    avp::PATH,
    avp::CONTACT,
    avp::SUBSCRIPTION_INFO,
    avp::CALL_ID_SIP_HEADER,
    avp::FROM_SIP_HEADER,
    avp::TO_SIP_HEADER,
    avp::RECORD_ROUTE,
    avp::ASSOCIATED_REGISTERED_IDENTITIES,
    avp::MULTIPLE_REGISTRATION_INDICATION,
    avp::RESTORATION_INFO,
    avp::SESSION_PRIORITY,
    avp::IDENTITY_WITH_EMERGENCY_REGISTRATION,
    avp::PRIVILEDGED_SENDER_INDICATION,
    avp::LIA_FLAGS,
    avp::INITIAL_CSEQ_SEQUENCE_NUMBER,
    avp::SAR_FLAGS,
    avp::MSISDN,
    avp::SERVED_PARTY_IP_ADDRESS,
    avp::QOS_CLASS_IDENTIFIER,
    avp::RAT_TYPE,
    avp::ALLOCATION_RETENTION_PRIORITY,
    avp::PRIORITY_LEVEL,
    avp::PRE_EMPTION_CAPABILITY,
    avp::PRE_EMPTION_VULNERABILITY,
    avp::SUBSCRIPTION_DATA,
    avp::TERMINAL_INFORMATION,
    avp::IMEI,
    avp::SOFTWARE_VERSION,
    avp::QOS_SUBSCRIBED,
    avp::ULR_FLAGS,
    avp::ULA_FLAGS,
    avp::VISITED_PLMN_ID,
    avp::REQUESTED_EUTRAN_AUTHENTICATION_INFO,
    avp::REQUESTED_UTRAN_GERAN_AUTHENTICATION_INFO,
    avp::NUMBER_OF_REQUESTED_VECTORS,
    avp::RE_SYNCHRONIZATION_INFO,
    avp::IMMEDIATE_RESPONSE_PREFERRED,
    avp::AUTHENTICATION_INFO,
    avp::E_UTRAN_VECTOR,
    avp::UTRAN_VECTOR,
    avp::GERAN_VECTOR,
    avp::NETWORK_ACCESS_MODE,
    avp::HPLMN_ODB,
    avp::ITEM_NUMBER,
    avp::CANCELLATION_TYPE,
    avp::DSR_FLAGS,
    avp::DSA_FLAGS,
    avp::CONTEXT_IDENTIFIER,
    avp::SUBSCRIBER_STATUS,
    avp::OPERATOR_DETERMINED_BARRING,
    avp::ACCESS_RESTRICTION_DATA,
    avp::APN_OI_REPLACEMENT,
    avp::ALL_APN_CONFIGURATIONS_INCLUDED_INDICATOR,
    avp::APN_CONFIGURATION_PROFILE,
    avp::APN_CONFIGURATION,
    avp::EPS_SUBSCRIBED_QOS_PROFILE,
    avp::VPLMN_DYNAMIC_ADDRESS_ALLOWED,
    avp::STN_SR,
    avp::ALERT_REASON,
    avp::AMBR,
    avp::CSG_SUBSCRIPTION_DATA,
    avp::CSG_ID,
    avp::PDN_GW_ALLOCATION_TYPE,
    avp::EXPIRATION_DATE,
    avp::RAT_FREQUENCY_SELECTION_PRIORITY_ID,
    avp::IDA_FLAGS,
    avp::PUA_FLAGS,
    avp::NOR_FLAGS,
    avp::USER_ID,
    avp::EQUIPMENT_STATUS,
    avp::REGIONAL_SUBSCRIPTION_ZONE_CODE,
    avp::RAND,
    avp::XRES,
    avp::AUTN,
    avp::KASME,
    avp::TRACE_COLLECTION_ENTITY,
    avp::KC,
    avp::SRES,
    avp::PDN_TYPE,
    avp::ROAMING_RESTRICTED_DUE_TO_UNSUPPORTED_FEATURE,
    avp::TRACE_DATA,
    avp::TRACE_REFERENCE,
    avp::TRACE_DEPTH,
    avp::TRACE_NE_TYPE_LIST,
    avp::TRACE_INTERFACE_LIST,
    avp::TRACE_EVENT_LIST,
    avp::OMC_ID,
    avp::GPRS_SUBSCRIPTION_DATA,
    avp::COMPLETE_DATA_LIST_INCLUDED_INDICATOR,
    avp::PDP_CONTEXT,
    avp::PDP_TYPE,
    avp::TGPP2_MEID,
    avp::SPECIFIC_APN_INFO,
    avp::LCS_INFO,
    avp::GMLC_NUMBER,
    avp::SS_CODE,
    avp::SS_STATUS,
    avp::NOTIFICATION_TO_UE_USER,
    avp::EXTERNAL_CLIENT,
    avp::CLIENT_IDENTITY,
    avp::GMLC_RESTRICTION,
    avp::PLMN_CLIENT,
    avp::SERVICE_TYPE,
    avp::SERVICETYPEIDENTITY,
    avp::MO_LR,
    avp::TELESERVICE_LIST,
    avp::TS_CODE,
    avp::CALL_BARRING_INFO,
    avp::SGSN_NUMBER,
    avp::IDR_FLAGS,
    avp::ICS_INDICATOR,
    avp::IMS_VOICE_OVER_PS_SESSIONS_SUPPORTED,
    avp::HOMOGENEOUS_SUPPORT_OF_IMS_VOICE_OVER_PS_SESSIONS,
    avp::LAST_UE_ACTIVITY_TIME,
    avp::EPS_USER_STATE,
    avp::EPS_LOCATION_INFORMATION,
    avp::MME_USER_STATE,
    avp::SGSN_USER_STATE,
    avp::USER_STATE,
    avp::NON_TGPP_USER_DATA,
    avp::NON_TGPP_IP_ACCESS,
    avp::NON_TGPP_IP_ACCESS_APN,
    avp::AN_TRUSTED,
    avp::ANID,
    avp::TRACE_INFO,
    avp::MIP_FA_RK,
    avp::MIP_FA_RK_SPI,
    avp::PPR_FLAGS,
    avp::WLAN_IDENTIFIER,
    avp::TWAN_ACCESS_INFO,
    avp::ACCESS_AUTHORIZATION_FLAGS,
    avp::TWAN_DEFAULT_APN_CONTEXT_ID,
    avp::FULL_NETWORK_NAME,
    avp::SHORT_NETWORK_NAME,
    avp::AAA_FAILURE_INDICATION,
    avp::TRANSPORT_ACCESS_TYPE,
    avp::SSID,
    avp::HESSID,
    avp::ACCESS_NETWORK_INFO,
    avp::MME_LOCATION_INFORMATION,
    avp::SGSN_LOCATION_INFORMATION,
    avp::E_UTRAN_CELL_GLOBAL_IDENTITY,
    avp::TRACKING_AREA_IDENTITY,
    avp::CELL_GLOBAL_IDENTITY,
    avp::ROUTING_AREA_IDENTITY,
    avp::LOCATION_AREA_IDENTITY,
    avp::SERVICE_AREA_IDENTITY,
    avp::GEOGRAPHICAL_INFORMATION,
    avp::GEODETIC_INFORMATION,
    avp::CURRENT_LOCATION_RETRIEVED,
    avp::AGE_OF_LOCATION_INFORMATION,
    avp::ACTIVE_APN,
    avp::SIPTO_PERMISSION,
    avp::ERROR_DIAGNOSTIC,
    avp::UE_SRVCC_CAPABILITY,
    avp::MPS_PRIORITY,
    avp::VPLMN_LIPA_ALLOWED,
    avp::LIPA_PERMISSION,
    avp::SUBSCRIBED_PERIODIC_RAU_TAU_TIMER,
    avp::EXT_PDP_TYPE,
    avp::EXT_PDP_ADDRESS,
    avp::MDT_CONFIGURATION,
    avp::EQUIVALENT_PLMN_LIST,
    avp::CLR_FLAGS,
    avp::MME_NUMBER_FOR_MT_SMS,
    avp::SMS_REGISTER_REQUEST,
    avp::SUBSCRIPTION_DATA_FLAGS,
    avp::UE_USAGE_TYPE,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_and_unique() {
        for w in ALL.windows(2) {
            assert!(
                (w[0].vendor, w[0].code) < (w[1].vendor, w[1].code),
                "{} before {}",
                w[0].name,
                w[1].name
            );
        }
        assert_eq!(lookup(264, 0).map(|d| d.name), Some("Origin-Host"));
        assert_eq!(lookup(1450, TGPP).map(|d| d.name), Some("KASME"));
        assert_eq!(lookup(1450, 0), None);
    }
}
