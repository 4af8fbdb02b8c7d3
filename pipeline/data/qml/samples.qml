<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<!-- sitewatch reference sample (sitewatch sample): points coloured by the analyst's label, the
     sampled pixel drawn as a square of its true size, a drop-down of the allowed labels, and the
     map stratum hidden so that labelling stays blind to the map (Olofsson et al. 2014). -->
<qgis version="3.22.16-Białowieża" styleCategories="Symbology|Fields|Forms|AttributeTable">
  <renderer-v2 type="categorizedSymbol" attr="label" forceraster="0" symbollevels="0" enableorderby="0" referencescale="-1">
    <categories>
      <category value="coal" symbol="0" label="coal stockpile" render="true"/>
      <category value="footprint_not_coal" symbol="1" label="footprint, not coal (built, bare, spoil)" render="true"/>
      <category value="other" symbol="2" label="other (vegetation, water, fields)" render="true"/>
      <category value="" symbol="3" label="not labelled yet" render="true"/>
    </categories>
    <symbols>
      <symbol type="marker" name="0" alpha="1" clip_to_extent="1" force_rhr="0">
        <layer class="SimpleMarker" enabled="1" locked="0" pass="0">
          <prop k="name" v="square"/>
          <prop k="color" v="0,0,0,0"/>
          <prop k="outline_color" v="20,20,20,255"/>
          <prop k="outline_style" v="solid"/>
          <prop k="outline_width" v="0.4"/>
          <prop k="outline_width_unit" v="MM"/>
          <prop k="size" v="10"/>
          <prop k="size_unit" v="RenderMetersInMapUnits"/>
          <prop k="angle" v="0"/>
          <prop k="joinstyle" v="miter"/>
          <prop k="scale_method" v="diameter"/>
          <prop k="vertical_anchor_point" v="1"/>
          <prop k="horizontal_anchor_point" v="1"/>
          <data_defined_properties>
            <Option type="Map">
              <Option name="name" value="" type="QString"/>
              <Option name="properties" type="Map">
                <Option name="size" type="Map">
                  <Option name="active" value="true" type="bool"/>
                  <Option name="field" value="pixel_size_m" type="QString"/>
                  <Option name="type" value="2" type="int"/>
                </Option>
              </Option>
              <Option name="type" value="collection" type="QString"/>
            </Option>
          </data_defined_properties>
        </layer>
        <layer class="SimpleMarker" enabled="1" locked="0" pass="0">
          <prop k="name" v="circle"/>
          <prop k="color" v="20,20,20,255"/>
          <prop k="outline_color" v="255,255,255,255"/>
          <prop k="outline_style" v="solid"/>
          <prop k="outline_width" v="0.4"/>
          <prop k="outline_width_unit" v="MM"/>
          <prop k="size" v="3"/>
          <prop k="size_unit" v="MM"/>
          <prop k="angle" v="0"/>
          <prop k="scale_method" v="diameter"/>
          <prop k="vertical_anchor_point" v="1"/>
          <prop k="horizontal_anchor_point" v="1"/>
        </layer>
      </symbol>
      <symbol type="marker" name="1" alpha="1" clip_to_extent="1" force_rhr="0">
        <layer class="SimpleMarker" enabled="1" locked="0" pass="0">
          <prop k="name" v="square"/>
          <prop k="color" v="0,0,0,0"/>
          <prop k="outline_color" v="230,85,13,255"/>
          <prop k="outline_style" v="solid"/>
          <prop k="outline_width" v="0.4"/>
          <prop k="outline_width_unit" v="MM"/>
          <prop k="size" v="10"/>
          <prop k="size_unit" v="RenderMetersInMapUnits"/>
          <prop k="angle" v="0"/>
          <prop k="joinstyle" v="miter"/>
          <prop k="scale_method" v="diameter"/>
          <prop k="vertical_anchor_point" v="1"/>
          <prop k="horizontal_anchor_point" v="1"/>
          <data_defined_properties>
            <Option type="Map">
              <Option name="name" value="" type="QString"/>
              <Option name="properties" type="Map">
                <Option name="size" type="Map">
                  <Option name="active" value="true" type="bool"/>
                  <Option name="field" value="pixel_size_m" type="QString"/>
                  <Option name="type" value="2" type="int"/>
                </Option>
              </Option>
              <Option name="type" value="collection" type="QString"/>
            </Option>
          </data_defined_properties>
        </layer>
        <layer class="SimpleMarker" enabled="1" locked="0" pass="0">
          <prop k="name" v="circle"/>
          <prop k="color" v="230,85,13,255"/>
          <prop k="outline_color" v="255,255,255,255"/>
          <prop k="outline_style" v="solid"/>
          <prop k="outline_width" v="0.4"/>
          <prop k="outline_width_unit" v="MM"/>
          <prop k="size" v="3"/>
          <prop k="size_unit" v="MM"/>
          <prop k="angle" v="0"/>
          <prop k="scale_method" v="diameter"/>
          <prop k="vertical_anchor_point" v="1"/>
          <prop k="horizontal_anchor_point" v="1"/>
        </layer>
      </symbol>
      <symbol type="marker" name="2" alpha="1" clip_to_extent="1" force_rhr="0">
        <layer class="SimpleMarker" enabled="1" locked="0" pass="0">
          <prop k="name" v="square"/>
          <prop k="color" v="0,0,0,0"/>
          <prop k="outline_color" v="49,163,84,255"/>
          <prop k="outline_style" v="solid"/>
          <prop k="outline_width" v="0.4"/>
          <prop k="outline_width_unit" v="MM"/>
          <prop k="size" v="10"/>
          <prop k="size_unit" v="RenderMetersInMapUnits"/>
          <prop k="angle" v="0"/>
          <prop k="joinstyle" v="miter"/>
          <prop k="scale_method" v="diameter"/>
          <prop k="vertical_anchor_point" v="1"/>
          <prop k="horizontal_anchor_point" v="1"/>
          <data_defined_properties>
            <Option type="Map">
              <Option name="name" value="" type="QString"/>
              <Option name="properties" type="Map">
                <Option name="size" type="Map">
                  <Option name="active" value="true" type="bool"/>
                  <Option name="field" value="pixel_size_m" type="QString"/>
                  <Option name="type" value="2" type="int"/>
                </Option>
              </Option>
              <Option name="type" value="collection" type="QString"/>
            </Option>
          </data_defined_properties>
        </layer>
        <layer class="SimpleMarker" enabled="1" locked="0" pass="0">
          <prop k="name" v="circle"/>
          <prop k="color" v="49,163,84,255"/>
          <prop k="outline_color" v="255,255,255,255"/>
          <prop k="outline_style" v="solid"/>
          <prop k="outline_width" v="0.4"/>
          <prop k="outline_width_unit" v="MM"/>
          <prop k="size" v="3"/>
          <prop k="size_unit" v="MM"/>
          <prop k="angle" v="0"/>
          <prop k="scale_method" v="diameter"/>
          <prop k="vertical_anchor_point" v="1"/>
          <prop k="horizontal_anchor_point" v="1"/>
        </layer>
      </symbol>
      <symbol type="marker" name="3" alpha="1" clip_to_extent="1" force_rhr="0">
        <layer class="SimpleMarker" enabled="1" locked="0" pass="0">
          <prop k="name" v="square"/>
          <prop k="color" v="0,0,0,0"/>
          <prop k="outline_color" v="255,0,255,255"/>
          <prop k="outline_style" v="dash"/>
          <prop k="outline_width" v="0.4"/>
          <prop k="outline_width_unit" v="MM"/>
          <prop k="size" v="10"/>
          <prop k="size_unit" v="RenderMetersInMapUnits"/>
          <prop k="angle" v="0"/>
          <prop k="joinstyle" v="miter"/>
          <prop k="scale_method" v="diameter"/>
          <prop k="vertical_anchor_point" v="1"/>
          <prop k="horizontal_anchor_point" v="1"/>
          <data_defined_properties>
            <Option type="Map">
              <Option name="name" value="" type="QString"/>
              <Option name="properties" type="Map">
                <Option name="size" type="Map">
                  <Option name="active" value="true" type="bool"/>
                  <Option name="field" value="pixel_size_m" type="QString"/>
                  <Option name="type" value="2" type="int"/>
                </Option>
              </Option>
              <Option name="type" value="collection" type="QString"/>
            </Option>
          </data_defined_properties>
        </layer>
        <layer class="SimpleMarker" enabled="1" locked="0" pass="0">
          <prop k="name" v="circle"/>
          <prop k="color" v="255,255,255,0"/>
          <prop k="outline_color" v="255,0,255,255"/>
          <prop k="outline_style" v="solid"/>
          <prop k="outline_width" v="0.8"/>
          <prop k="outline_width_unit" v="MM"/>
          <prop k="size" v="3.5"/>
          <prop k="size_unit" v="MM"/>
          <prop k="angle" v="0"/>
          <prop k="scale_method" v="diameter"/>
          <prop k="vertical_anchor_point" v="1"/>
          <prop k="horizontal_anchor_point" v="1"/>
        </layer>
      </symbol>
    </symbols>
  </renderer-v2>
  <fieldConfiguration>
    <field name="sample_id" configurationFlags="None">
      <editWidget type="TextEdit"><config><Option/></config></editWidget>
    </field>
    <field name="site_id" configurationFlags="None">
      <editWidget type="TextEdit"><config><Option/></config></editWidget>
    </field>
    <field name="year" configurationFlags="None">
      <editWidget type="TextEdit"><config><Option/></config></editWidget>
    </field>
    <field name="label" configurationFlags="None">
      <editWidget type="ValueMap">
        <config>
          <Option type="Map">
            <Option name="map" type="List">
              <Option type="Map">
                <Option name="&lt;not labelled&gt;" value="{2839923C-8B7D-419E-B84B-CA2FE9B80EC7}" type="QString"/>
              </Option>
              <Option type="Map">
                <Option name="coal stockpile" value="coal" type="QString"/>
              </Option>
              <Option type="Map">
                <Option name="footprint, not coal (built, bare, spoil)" value="footprint_not_coal" type="QString"/>
              </Option>
              <Option type="Map">
                <Option name="other (vegetation, water, fields)" value="other" type="QString"/>
              </Option>
            </Option>
          </Option>
        </config>
      </editWidget>
    </field>
    <field name="note" configurationFlags="None">
      <editWidget type="TextEdit"><config><Option type="Map"><Option name="IsMultiline" value="true" type="bool"/></Option></config></editWidget>
    </field>
    <field name="stratum" configurationFlags="None">
      <editWidget type="Hidden"><config><Option/></config></editWidget>
    </field>
    <field name="pixel_size_m" configurationFlags="None">
      <editWidget type="TextEdit"><config><Option/></config></editWidget>
    </field>
    <field name="x" configurationFlags="None">
      <editWidget type="TextEdit"><config><Option/></config></editWidget>
    </field>
    <field name="y" configurationFlags="None">
      <editWidget type="TextEdit"><config><Option/></config></editWidget>
    </field>
    <field name="crs" configurationFlags="None">
      <editWidget type="TextEdit"><config><Option/></config></editWidget>
    </field>
  </fieldConfiguration>
  <aliases>
    <alias field="label" index="3" name="reference label"/>
    <alias field="note" index="4" name="note"/>
    <alias field="pixel_size_m" index="6" name="pixel size (m)"/>
    <alias field="x" index="7" name="x (site UTM, pixel centre)"/>
    <alias field="y" index="8" name="y (site UTM, pixel centre)"/>
    <alias field="crs" index="9" name="site UTM CRS"/>
  </aliases>
  <editable>
    <field name="sample_id" editable="0"/>
    <field name="site_id" editable="0"/>
    <field name="year" editable="0"/>
    <field name="label" editable="1"/>
    <field name="note" editable="1"/>
    <field name="stratum" editable="0"/>
    <field name="pixel_size_m" editable="0"/>
    <field name="x" editable="0"/>
    <field name="y" editable="0"/>
    <field name="crs" editable="0"/>
  </editable>
  <attributetableconfig actionWidgetStyle="dropDown" sortExpression="&quot;sample_id&quot;" sortOrder="0">
    <columns>
      <column type="field" name="sample_id" width="-1" hidden="0"/>
      <column type="field" name="site_id" width="-1" hidden="0"/>
      <column type="field" name="year" width="-1" hidden="0"/>
      <column type="field" name="label" width="-1" hidden="0"/>
      <column type="field" name="note" width="-1" hidden="0"/>
      <column type="field" name="stratum" width="-1" hidden="1"/>
      <column type="field" name="pixel_size_m" width="-1" hidden="1"/>
      <column type="field" name="x" width="-1" hidden="0"/>
      <column type="field" name="y" width="-1" hidden="0"/>
      <column type="field" name="crs" width="-1" hidden="0"/>
      <column type="actions" width="-1" hidden="1"/>
    </columns>
  </attributetableconfig>
  <editform tolerant="1"></editform>
  <editforminit/>
  <editforminitcodesource>0</editforminitcodesource>
  <editorlayout>generatedlayout</editorlayout>
  <previewExpression>"site_id" || ' ' || "year" || ' #' || "sample_id"</previewExpression>
  <layerGeometryType>0</layerGeometryType>
</qgis>
