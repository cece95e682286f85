/**
 * Home Assistant's documented abbreviations for MQTT discovery payloads (homeassistant/components/
 * mqtt/abbreviations.py), limited to the keys of the platforms Perch publishes (binary_sensor,
 * sensor, image) and the shared options. Home Assistant expands them before validating; our
 * validator does the same, so a typo in an abbreviation shows up as an unknown key.
 */
export const ENTITY_ABBREVIATIONS: Readonly<Record<string, string>> = {
  avty: 'availability',
  avty_mode: 'availability_mode',
  avty_t: 'availability_topic',
  avty_tpl: 'availability_template',
  cmps: 'components',
  cmd_t: 'command_topic',
  cmd_tpl: 'command_template',
  cont_type: 'content_type',
  def_ent_id: 'default_entity_id',
  dev: 'device',
  dev_cla: 'device_class',
  e: 'encoding',
  en: 'enabled_by_default',
  ent_cat: 'entity_category',
  ent_pic: 'entity_picture',
  exp_aft: 'expire_after',
  frc_upd: 'force_update',
  ic: 'icon',
  img_e: 'image_encoding',
  img_t: 'image_topic',
  json_attr_t: 'json_attributes_topic',
  json_attr_tpl: 'json_attributes_template',
  lrst_t: 'last_reset_topic',
  lrst_val_tpl: 'last_reset_value_template',
  o: 'origin',
  obj_id: 'object_id',
  off_dly: 'off_delay',
  opts: 'options',
  p: 'platform',
  pl_avail: 'payload_available',
  pl_not_avail: 'payload_not_available',
  pl_off: 'payload_off',
  pl_on: 'payload_on',
  stat_cla: 'state_class',
  stat_t: 'state_topic',
  sug_dsp_prc: 'suggested_display_precision',
  t: 'topic',
  uniq_id: 'unique_id',
  unit_of_meas: 'unit_of_measurement',
  url_t: 'url_topic',
  url_tpl: 'url_template',
  val_tpl: 'value_template',
};

/** Abbreviations inside the `device` (`dev`) mapping. */
export const DEVICE_ABBREVIATIONS: Readonly<Record<string, string>> = {
  cns: 'connections',
  cu: 'configuration_url',
  hw: 'hw_version',
  ids: 'identifiers',
  mdl: 'model',
  mdl_id: 'model_id',
  mf: 'manufacturer',
  sa: 'suggested_area',
  sn: 'serial_number',
  sw: 'sw_version',
};

/** Abbreviations inside the `origin` (`o`) mapping. */
export const ORIGIN_ABBREVIATIONS: Readonly<Record<string, string>> = {
  sw: 'sw_version',
  url: 'support_url',
};

/**
 * Replaces abbreviated keys by their full names. Returns the expanded object and the keys that
 * were given twice (abbreviated and in full), which Home Assistant would resolve arbitrarily.
 */
export function expandKeys(
  obj: Record<string, unknown>,
  table: Readonly<Record<string, string>>,
): { expanded: Record<string, unknown>; duplicates: string[] } {
  const expanded: Record<string, unknown> = {};
  const duplicates: string[] = [];
  for (const [key, value] of Object.entries(obj)) {
    const full = Object.prototype.hasOwnProperty.call(table, key) ? (table[key] as string) : key;
    if (Object.prototype.hasOwnProperty.call(expanded, full)) duplicates.push(full);
    expanded[full] = value;
  }
  return { expanded, duplicates };
}
